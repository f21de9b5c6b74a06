"""The fused begin/settle leave the ledger as the separate record and moves would.

begin creates a new record already `sending` (one HSET, one index entry, both events) and
settle leaves lapsed index entries to the writer's periodic prune: what Redis holds afterwards
must be what `record` then `mark_sending` (and a terminal move) leave.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis.asyncio import Redis

from tests.writer.harness import approved, tweet
from tests.writer.test_send_steps import ENDPOINT, SPEND, steps_for
from twitstack.writer.send_steps import BeginOutcome
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.models import WriteRequest, utcnow
from twitstack.writes.transitions import Change
from twitstack.writes.wire import encode_write_request

pytestmark = pytest.mark.anyio
# Set from the clock of the call that wrote them.
_TIMES = {"recorded_at", "updated_at", "sending_started_at"}


async def _state_of(redis: Redis, request_id: str) -> dict[str, object]:
    """What the ledger holds for one id: hash fields (times left out), indexes, event moves."""
    fields = {
        k.decode(): v.decode()
        for k, v in (await redis.hgetall(keys.request(request_id))).items()
        if k.decode() not in _TIMES
    }
    indexes = {}
    for name in ("schedule", "expiry", *(f"state:{s.value}" for s in S)):
        score = await redis.zscore(f"writes:{name}", request_id)
        if score is not None:
            indexes[name] = score
    events = [
        (e.from_state, e.to_state, e.actor, e.reason, e.revision, e.attempt)
        for e in await RequestLedger(redis).read_events()
        if e.request_id == request_id
    ]
    return {"fields": fields, "indexes": indexes, "events": events}


async def _begin_both_ways(redis: Redis, request: WriteRequest) -> tuple[object, object]:
    steps, ledger = steps_for(redis)
    begun = await steps.begin(
        request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND
    )
    assert (begun.outcome, begun.created, begun.attempt) == (BeginOutcome.SENDING, True, 1)
    fused = await _state_of(redis, request.id)
    await redis.flushdb()
    await ledger.record(request, actor="w", reason="received")
    moved = await ledger.mark_sending(request.id, actor="w", expected_revision=request.revision)
    assert moved.ok
    spent = await redis.keys("writes:spent:*")
    assert len(spent) == 1
    return fused, await _state_of(redis, request.id)


async def test_a_new_record_begun_is_what_record_then_sending_leave(redis: Redis) -> None:
    fused, apart = await _begin_both_ways(redis, approved(tweet("one step")))
    assert fused == apart


async def test_a_new_record_with_an_expiry_keeps_its_expiry_entry(redis: Redis) -> None:
    request = approved(tweet("expiring", expires_at=utcnow() + timedelta(hours=1)))
    fused, apart = await _begin_both_ways(redis, request)
    assert fused == apart
    assert "expiry" in fused["indexes"]  # type: ignore[operator]


async def test_a_record_moderation_holds_is_begun_from_one_read(redis: Redis) -> None:
    """The usual production path: recorded and approved elsewhere, then taken by a writer."""
    steps, ledger = steps_for(redis)
    request = approved(tweet("moderated"))
    await ledger.record(request, actor="moderation")
    begun = await steps.begin(
        request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND
    )
    assert (begun.outcome, begun.created, begun.attempt) == (BeginOutcome.SENDING, False, 1)
    state = await _state_of(redis, request.id)
    assert state["indexes"] == {"state:sending": state["indexes"]["state:sending"]}  # type: ignore[index]
    assert [e[:2] for e in state["events"]] == [(None, S.APPROVED), (S.APPROVED, S.SENDING)]  # type: ignore[attr-defined]


async def test_a_tombstone_beside_a_held_record_refuses_the_send(redis: Redis) -> None:
    """A hash in approved next to a tombstone (e.g. restored from a backup): never sent."""
    steps, ledger = steps_for(redis)
    request = approved(tweet("restored"))
    await ledger.record(request, actor="moderation")
    await redis.set(keys.tombstone(request.id), "executed")
    begun = await steps.begin(
        request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND
    )
    assert (begun.outcome, begun.refused) == (BeginOutcome.REFUSED, "tombstoned")
    assert (await ledger.get(request.id)).state is S.APPROVED  # type: ignore[union-attr]


async def test_settle_leaves_lapsed_entries_to_the_periodic_prune(redis: Redis) -> None:
    steps, ledger = steps_for(redis)
    # A terminal request whose hash has lapsed, due in the retention index.
    await redis.zadd(keys.state_index(S.EXECUTED), {"gone": 1})
    await redis.zadd(keys.RETENTION, {"gone": 1})
    expiring = approved(tweet("settled", expires_at=utcnow() + timedelta(hours=1)))
    raw = encode_write_request(expiring)
    await steps.begin(expiring, raw, ENDPOINT, actor="w", spend=SPEND)
    moved, _ = await steps.settle(
        expiring.id, S.EXECUTED, from_states=[S.SENDING], actor="w", reason="created",
        result={"tweet_id": "7"}, observation=None, ticket=None,
    )  # fmt: skip
    assert moved.ok
    assert await redis.zscore(keys.EXPIRY, expiring.id) is None
    assert await redis.zscore(keys.state_index(S.EXECUTED), "gone") is not None
    assert await ledger.prune_lapsed() == 1
    assert await redis.zscore(keys.state_index(S.EXECUTED), "gone") is None
    assert await redis.zscore(keys.RETENTION, "gone") is None
    assert await redis.zscore(keys.state_index(S.EXECUTED), expiring.id) is not None


async def _auto_apart(redis: Redis, request: WriteRequest, *, send: bool) -> dict[str, object]:
    """What record (pending), auto-approval and (if `send`) sending leave, as separate calls."""
    ledger = RequestLedger(redis)
    await ledger.record(request, actor="w", reason="received")
    approved_ = await ledger.transitions.run(
        request.id, frozenset({S.PENDING}), S.APPROVED, actor="w", reason="auto_approved",
        expected_revision=request.revision, change=Change(),
    )  # fmt: skip
    assert approved_.ok
    if send:
        moved = await ledger.mark_sending(request.id, actor="w", expected_revision=1)
        assert moved.ok
    return await _state_of(redis, request.id)


@pytest.mark.parametrize("expires", [False, True])
async def test_a_new_record_auto_approved_and_begun_is_what_three_calls_leave(
    redis: Redis, expires: bool
) -> None:
    """require_approval = false: one HSET for pending -> approved -> sending, three events."""
    steps, _ = steps_for(redis)
    extra = {"expires_at": utcnow() + timedelta(hours=1)} if expires else {}
    request = tweet("open", **extra)
    begun = await steps.begin(
        request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND,
        auto_approve=True,
    )  # fmt: skip
    assert (begun.outcome, begun.auto_approved) == (BeginOutcome.SENDING, True)
    fused = await _state_of(redis, request.id)
    await redis.flushdb()
    assert fused == await _auto_apart(redis, request, send=True)
    assert [e[:2] for e in fused["events"]] == [  # type: ignore[attr-defined]
        (None, S.PENDING), (S.PENDING, S.APPROVED), (S.APPROVED, S.SENDING),
    ]  # fmt: skip


async def test_a_new_record_auto_approved_but_blocked_is_written_approved(redis: Redis) -> None:
    steps, _ = steps_for(redis)
    window = keys.rate_limit_budget("default", ENDPOINT, "window")
    await redis.hset(window, mapping={"limit": 1, "remaining": 0, "reset": 1_900})
    request = tweet("open, no room")
    begun = await steps.begin(
        request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND,
        auto_approve=True,
    )  # fmt: skip
    assert (begun.outcome, begun.auto_approved) == (BeginOutcome.BLOCKED, True)
    fused = await _state_of(redis, request.id)
    await redis.flushdb()
    assert fused == await _auto_apart(redis, request, send=False)
