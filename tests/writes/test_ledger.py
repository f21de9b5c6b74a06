"""The Redis ledger: idempotent records, compare-and-set transitions, events, edits, retention."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

import anyio
import pytest
from redis.asyncio import Redis

from twitstack.writes import keys
from twitstack.writes.errors import InvalidTransitionError, PayloadError
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.ledger_types import TransitionStatus
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.models import WriteAction, WriteRequest, utcnow
from twitstack.writes.signing import ApprovalSigner, ApprovalVerifier, generate_private_key
from twitstack.writes.states import TRANSITIONS
from twitstack.writes.wire import decode_write_request

pytestmark = pytest.mark.anyio


def tweet(
    request_id: str = "r1",
    text: str = "hello",
    *,
    moderation: S = S.PENDING,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
) -> WriteRequest:
    """A tweet request with a fixed id."""
    return WriteRequest(
        action=WriteAction.TWEET,
        payload={"text": text},
        id=request_id,
        moderation=moderation,
        not_before=not_before,
        expires_at=expires_at,
    )


async def test_record_is_idempotent(redis: Redis) -> None:
    """Recording the same id twice creates one record and one event."""
    ledger = RequestLedger(redis)
    first = await ledger.record(tweet(), actor="writer-1")
    second = await ledger.record(tweet(text="other"), actor="writer-2")
    assert first.created
    assert not second.created
    assert second.state is S.PENDING
    record = await ledger.get("r1")
    assert record is not None
    assert record.request.payload == {"text": "hello"}
    assert await ledger.count(S.PENDING) == 1
    assert len(await ledger.read_events()) == 1


async def test_racing_transitions_have_exactly_one_winner(redis: Redis) -> None:
    """Two coroutines CAS approved -> sending on the same request: one wins, one is told why."""
    ledger = RequestLedger(redis)
    await ledger.record(tweet(moderation=S.APPROVED), actor="t")
    results = []

    async def claim(actor: str) -> None:
        results.append(await ledger.mark_sending("r1", actor=actor))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for actor in ("a", "b", "c", "d"):
                tg.start_soon(claim, actor)
    winners = [r for r in results if r.ok]
    assert len(winners) == 1
    assert winners[0].attempt == 1
    losers = [r for r in results if not r.ok]
    assert all(r.status is TransitionStatus.STATE_MISMATCH for r in losers)
    assert all(r.found_state is S.SENDING for r in losers)


async def test_forbidden_moves_raise_before_touching_redis(redis: Redis) -> None:
    """The transition table refuses e.g. pending -> sending and anything out of executed."""
    ledger = RequestLedger(redis)
    await ledger.record(tweet(), actor="t")
    with pytest.raises(InvalidTransitionError):
        await ledger.transition("r1", S.SENDING, from_states=[S.PENDING], actor="t", reason="x")
    with pytest.raises(InvalidTransitionError):
        await ledger.transition("r1", S.PENDING, from_states=[S.EXECUTED], actor="t", reason="x")
    assert all(not TRANSITIONS[s] for s in (S.EXECUTED, S.FAILED, S.REJECTED, S.EXPIRED))
    assert (await ledger.get("r1")) is not None
    assert (await ledger.get("r1")).state is S.PENDING  # type: ignore[union-attr]


async def test_unknown_request_is_reported_not_raised(redis: Redis) -> None:
    """A transition on an id the ledger lacks returns NOT_FOUND."""
    result = await RequestLedger(redis).transition(
        "ghost", S.REJECTED, from_states=[S.PENDING], actor="t", reason="x"
    )
    assert result.status is TransitionStatus.NOT_FOUND


async def test_full_life_records_attempts_results_and_events(redis: Redis) -> None:
    """approved -> sending -> unknown -> approved -> sending -> executed, all in the stream."""
    ledger = RequestLedger(redis)
    await ledger.record(tweet(moderation=S.APPROVED), actor="writer")
    assert (await ledger.mark_sending("r1", actor="w")).attempt == 1
    await ledger.transition("r1", S.UNKNOWN, from_states=[S.SENDING], actor="w", reason="timeout")
    retry = await ledger.retry_later("r1", not_before=utcnow(), actor="w", reason="not_found")
    assert retry.ok
    second = await ledger.mark_sending("r1", actor="w")
    assert second.attempt == 2
    done = await ledger.transition(
        "r1", S.EXECUTED, from_states=[S.SENDING], actor="w", reason="201",
        result={"tweet_id": "1800"},
    )  # fmt: skip
    assert done.ok
    record = await ledger.get("r1")
    assert record is not None
    assert record.state is S.EXECUTED
    assert record.attempt == 2
    assert record.result == {"tweet_id": "1800"}
    assert record.sending_started_at is not None
    events = await ledger.read_events()
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, S.APPROVED),
        (S.APPROVED, S.SENDING),
        (S.SENDING, S.UNKNOWN),
        (S.UNKNOWN, S.APPROVED),
        (S.APPROVED, S.SENDING),
        (S.SENDING, S.EXECUTED),
    ]
    assert events[-1].result == {"tweet_id": "1800"}
    assert events[-1].attempt == 2
    assert events[2].reason == "timeout"
    # Reading on from the last id returns nothing new; a new change shows up.
    assert await ledger.read_events(after=events[-1].stream_id) == []
    ttl = await redis.ttl(keys.request("r1"))
    assert 0 < ttl <= ledger.retention_s


async def test_approve_signs_revision_and_dispatches_to_the_queue(redis: Redis) -> None:
    """approve() moves pending -> approved and pushes the signed message onto write_queue."""
    ledger = RequestLedger(redis)
    signer = ApprovalSigner(generate_private_key())
    await ledger.record(tweet(), actor="producer")
    record = await ledger.get("r1")
    assert record is not None
    approval = signer.sign(record.request, approver="mod")
    result = await ledger.approve("r1", approval, expected_revision=1, actor="mod")
    assert result.ok
    queued = await redis.lrange(keys.WRITE_QUEUE, 0, -1)
    assert len(queued) == 1
    message = decode_write_request(queued[0])
    assert message.moderation is S.APPROVED
    assert ApprovalVerifier([signer.public_key]).check(message).ok
    stored = await ledger.get("r1")
    assert stored is not None
    assert ApprovalVerifier([signer.public_key]).check(stored.request).ok


async def test_edit_voids_approval_and_bumps_revision(redis: Redis) -> None:
    """Editing an approved request makes a new pending revision whose old signature fails."""
    ledger = RequestLedger(redis)
    signer = ApprovalSigner(generate_private_key())
    await ledger.record(tweet(), actor="p")
    original = await ledger.get("r1")
    assert original is not None
    approval = signer.sign(original.request, approver="mod")
    await ledger.approve("r1", approval, expected_revision=1, actor="mod")
    edited = await ledger.edit("r1", {"text": "hello, edited"}, expected_revision=1, actor="mod")
    assert edited.ok
    assert edited.revision == 2
    record = await ledger.get("r1")
    assert record is not None
    assert record.state is S.PENDING
    assert record.request.revision == 2
    assert record.request.approval is None
    # The old approval does not verify against the new revision, and approve() with it is stale.
    forged = replace(record.request, approval=approval)
    assert not ApprovalVerifier([signer.public_key]).check(forged).ok
    stale = await ledger.approve("r1", approval, expected_revision=1, actor="mod")
    assert stale.status is TransitionStatus.REVISION_MISMATCH


async def test_edit_validates_the_new_payload(redis: Redis) -> None:
    """An edit that breaks the payload rules raises and leaves the record as it was."""
    ledger = RequestLedger(redis)
    await ledger.record(tweet(), actor="p")
    with pytest.raises(PayloadError):
        await ledger.edit("r1", {"text": "x" * 300}, expected_revision=1, actor="mod")
    record = await ledger.get("r1")
    assert record is not None
    assert record.request.revision == 1


async def test_future_not_before_is_scheduled_not_executed(redis: Redis) -> None:
    """An approved request due later is recorded as scheduled, in the schedule zset."""
    ledger = RequestLedger(redis)
    later = utcnow() + timedelta(hours=1)
    result = await ledger.record(tweet(moderation=S.APPROVED, not_before=later), actor="w")
    assert result.created
    assert result.scheduled
    assert await redis.zscore(keys.SCHEDULE, "r1") is not None
    # Leaving approved cancels the promotion.
    await ledger.transition("r1", S.REJECTED, from_states=[S.APPROVED], actor="m", reason="no")
    assert await redis.zscore(keys.SCHEDULE, "r1") is None


async def test_expire_due_moves_overdue_requests(redis: Redis) -> None:
    """Requests past expires_at become expired; in-flight ones are left alone."""
    ledger = RequestLedger(redis)
    past = utcnow() - timedelta(seconds=1)
    await ledger.record(tweet("a", expires_at=past), actor="p")
    await ledger.record(tweet("b", moderation=S.APPROVED, expires_at=past), actor="p")
    await ledger.mark_sending("b", actor="w")
    await ledger.record(tweet("c", expires_at=utcnow() + timedelta(hours=1)), actor="p")
    assert await ledger.expire_due() == 1
    states = {r.request.id: r.state for r in await ledger.get_many(["a", "b", "c"])}
    assert states == {"a": S.EXPIRED, "b": S.SENDING, "c": S.PENDING}


async def test_terminal_records_lapse_and_leave_the_index(redis: Redis) -> None:
    """After retention a terminal record is gone and pruned from its state index."""
    ledger = RequestLedger(redis, retention_s=1)
    await ledger.record(tweet("old"), actor="p")
    await ledger.transition("old", S.REJECTED, from_states=[S.PENDING], actor="m", reason="no")
    with anyio.fail_after(5):
        for _ in range(100):  # the 1 s EXPIRE lapses in Redis's own time
            if not await redis.exists(keys.request("old")):
                break
            await anyio.sleep(0.05)
    await ledger.record(tweet("new"), actor="p")
    await ledger.transition("new", S.REJECTED, from_states=[S.PENDING], actor="m", reason="no")
    assert await ledger.count(S.REJECTED) == 1
    assert [r.request.id for r in await ledger.list_records(S.REJECTED)] == ["new"]


async def test_events_stream_is_capped(redis: Redis) -> None:
    """MAXLEN ~ keeps the stream near events_maxlen."""
    ledger = RequestLedger(redis, events_maxlen=10)
    for index in range(300):
        await ledger.record(tweet(f"r{index}"), actor="p")
    assert await redis.xlen(keys.EVENTS) < 300


async def test_event_fields_are_plain_json_friendly(redis: Redis) -> None:
    """Stream entries carry id/from/to/actor/reason/time as readable strings for other tools."""
    ledger = RequestLedger(redis)
    await ledger.record(tweet(), actor="p", reason="scraped")
    entries = await redis.xrange(keys.EVENTS)
    fields = {k.decode(): v.decode() for k, v in entries[0][1].items()}
    assert fields["id"] == "r1"
    assert fields["to"] == "pending"
    assert fields["reason"] == "scraped"
    assert json.loads(json.dumps(fields))["actor"] == "p"


async def test_a_verdict_about_one_attempt_is_refused_for_a_later_one(redis: Redis) -> None:
    """A reconciler read attempt 1 in `unknown`, looked at X, and decides "absent, re-send":
    meanwhile attempt 1 was settled, attempt 2 was sent and went `unknown` too. Its verdict
    must not apply to attempt 2 (whose post was never looked for: re-sending could post
    twice). Found in the chaos gate: a thread part posted twice."""
    ledger = RequestLedger(redis)
    await ledger.record(tweet(moderation=S.APPROVED), actor="w")
    for _ in range(2):
        assert (await ledger.mark_sending("r1", actor="w")).ok
        moved = await ledger.transition("r1", S.UNKNOWN, from_states=[S.SENDING], actor="w",
                                        reason="ambiguous")  # fmt: skip
        assert moved.ok
        if moved.attempt == 1:
            stale = await ledger.get("r1")
            assert stale is not None
            assert stale.attempt == 1
            resent = await ledger.retry_later(
                "r1", not_before=utcnow(), actor="w", reason="resend", from_states=[S.UNKNOWN]
            )
            assert resent.ok
    refused = await ledger.retry_later(
        "r1", not_before=utcnow(), actor="w", reason="reconciled_absent_resend",
        from_states=[S.UNKNOWN], expected_attempt=stale.attempt,
    )  # fmt: skip
    assert refused.status is TransitionStatus.ATTEMPT_MISMATCH
    assert refused.attempt == 2
    record = await ledger.get("r1")
    assert record is not None
    assert record.state is S.UNKNOWN
    review = await ledger.transition(
        "r1", S.NEEDS_REVIEW, from_states=[S.UNKNOWN], actor="w", reason="r", expected_attempt=1
    )
    assert review.status is TransitionStatus.ATTEMPT_MISMATCH
    current = await ledger.retry_later(
        "r1", not_before=utcnow(), actor="w", reason="reconciled_absent_resend",
        from_states=[S.UNKNOWN], expected_attempt=2,
    )  # fmt: skip
    assert current.ok
