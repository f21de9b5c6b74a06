"""A poison pill (crashed its consumer three times) is dead-lettered and its request flagged."""

from __future__ import annotations

import anyio
import pytest
from redis.asyncio import Redis

from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.queue import RecoveryReport, ReliableQueue, parse_dead_letter
from twitstack.writes.signing import ApprovalSigner, generate_private_key
from twitstack.writes.wire import encode_write_request

pytestmark = pytest.mark.anyio
SIGNER = ApprovalSigner(generate_private_key())


def approved_tweet(text: str) -> WriteRequest:
    request = WriteRequest(action=WriteAction.TWEET, payload={"text": text})
    return SIGNER.approve(request, approver="alice")


async def crash_three_times(redis: Redis, ledger: RequestLedger, raw: bytes) -> RecoveryReport:
    """Take `raw` and die with it in flight, three times; the last recovery's report."""
    await redis.rpush(keys.WRITE_QUEUE, raw)
    report = RecoveryReport()
    for crash in range(1, 4):
        victim = ReliableQueue(redis, f"victim-{crash}", heartbeat_ttl_s=0.05)
        with anyio.fail_after(5):
            assert await victim.take(1) == raw
        report = await ReliableQueue(redis, f"victim-{crash}", ledger=ledger).recover_own()
    return report


async def test_poison_pill_moves_its_approved_request_to_needs_review(redis: Redis) -> None:
    """Dead-lettered and flagged needs_review (poison_message) in one step, with its event."""
    ledger = RequestLedger(redis)
    request = approved_tweet("crashes every consumer")
    await ledger.record(request, actor="writer")
    report = await crash_three_times(redis, ledger, encode_write_request(request))
    assert report.dead_lettered == 1
    assert [flagged.id for flagged in report.flagged] == [request.id]
    record = await ledger.get(request.id)
    assert record is not None
    assert record.state is S.NEEDS_REVIEW
    assert record.last_reason == "poison_message"
    last = (await ledger.read_events())[-1]
    assert (last.from_state, last.to_state, last.reason) == (
        S.APPROVED,
        S.NEEDS_REVIEW,
        "poison_message",
    )
    (entry,) = await redis.lrange(keys.DEAD_LETTER, 0, -1)
    assert parse_dead_letter(entry)["reason"] == "crashed_consumer"


async def test_poison_pill_never_recorded_is_recorded_for_review(redis: Redis) -> None:
    """If the crash came before the ledger held it, the request is recorded needs_review."""
    ledger = RequestLedger(redis)
    request = approved_tweet("crashes before recording")
    report = await crash_three_times(redis, ledger, encode_write_request(request))
    assert [flagged.id for flagged in report.flagged] == [request.id]
    record = await ledger.get(request.id)
    assert record is not None
    assert record.state is S.NEEDS_REVIEW
    assert record.request.approval is None  # the approval is not carried into review


async def test_poison_pill_leaves_a_request_in_flight_to_the_reconciler(redis: Redis) -> None:
    """A request already `sending` is not flagged: reconciliation settles abandoned attempts."""
    ledger = RequestLedger(redis)
    request = approved_tweet("crashed while sending")
    await ledger.record(request, actor="writer")
    await ledger.mark_sending(request.id, actor="writer")
    report = await crash_three_times(redis, ledger, encode_write_request(request))
    assert report.dead_lettered == 1
    assert report.flagged == []
    assert (await ledger.get(request.id)).state is S.SENDING  # type: ignore[union-attr]


async def test_undecodable_poison_pill_is_only_dead_lettered(redis: Redis) -> None:
    """A pill that is not a request has no ledger entry to flag; it is dead-lettered as before."""
    ledger = RequestLedger(redis)
    report = await crash_three_times(redis, ledger, b"{not json")
    assert report.dead_lettered == 1
    assert report.flagged == []
    assert await ledger.counts() == dict.fromkeys(S, 0)
