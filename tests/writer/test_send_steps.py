"""The writer's fused Redis steps: begin (record, reserve, sending), settle (observe, move, ack)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from redis.asyncio import Redis

from tests.writer.harness import approved, tweet
from twitstack.core.sections.spend import SpendSettings
from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writer.send_steps import (
    BeginOutcome,
    Observation,
    PostClaim,
    QueueTicket,
    SendSteps,
)
from twitstack.writes import keys
from twitstack.writes.claims import claim_key
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.queue import message_digest
from twitstack.writes.spend import Periods, spend_args, spend_keys
from twitstack.writes.wire import encode_write_request

pytestmark = pytest.mark.anyio
ENDPOINT = "tweets.create"
BUDGET = keys.rate_limit_budgets("default", ENDPOINT)


async def in_flight(redis: Redis) -> bytes | None:
    """The budget hash's count of requests in flight (None: nothing reserved yet)."""
    value: bytes | None = await redis.hget(BUDGET, "pending")
    return value


_NOW = Periods.at(1_000.0)
# No caps: charging a post is all the spend part does here (tests/writer/test_spend.py).
SPEND = (spend_keys("default", _NOW), spend_args(SpendSettings(), "default", "post", 15000, _NOW))


def steps_for(redis: Redis, now: float = 1_000.0) -> tuple[SendSteps, RequestLedger]:
    ledger = RequestLedger(redis)
    return SendSteps(redis, ledger, RateLimitBudgets(redis, clock=lambda: now)), ledger


async def test_begin_records_reserves_and_commits_sending_at_once(redis: Redis) -> None:
    """A verified approved message is recorded, holds a reservation and is `sending`."""
    steps, ledger = steps_for(redis)
    request = approved(tweet("fused"))
    begun = await steps.begin(
        request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND
    )
    assert (begun.outcome, begun.created, begun.attempt) == (BeginOutcome.SENDING, True, 1)
    record = await ledger.get(request.id)
    assert record is not None
    assert record.state is S.SENDING
    assert record.attempt == 1
    assert record.sending_started_at is not None
    assert await in_flight(redis) == b"1"
    events = await ledger.read_events()
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, S.APPROVED),
        (S.APPROVED, S.SENDING),
    ]


async def test_begin_on_an_exhausted_window_leaves_it_approved(redis: Redis) -> None:
    """No room before the reset: recorded approved, nothing reserved, the reset returned."""
    steps, ledger = steps_for(redis)
    await redis.hset(BUDGET, mapping={"window.limit": 1, "window.remaining": 0,
                                      "window.reset": 1_900, "layout": 2})  # fmt: skip
    request = approved(tweet("no room"))
    begun = await steps.begin(
        request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND
    )
    assert (begun.outcome, begun.created, begun.blocked_until) == (BeginOutcome.BLOCKED, True, 1900)
    assert (await ledger.get(request.id)).state is S.APPROVED  # type: ignore[union-attr]
    assert await in_flight(redis) is None


async def test_begin_refuses_when_the_ledger_holds_another_revision(redis: Redis) -> None:
    """A message whose content or state the ledger does not hold is not sent: `differs`."""
    steps, ledger = steps_for(redis)
    pending = tweet("held for review")
    await ledger.record(pending, actor="moderation")
    signed = approved(pending)
    begun = await steps.begin(
        signed, encode_write_request(signed), ENDPOINT, actor="w", spend=SPEND
    )
    assert begun.outcome is BeginOutcome.DIFFERS
    assert not begun.created
    assert (await ledger.get(pending.id)).state is S.PENDING  # type: ignore[union-attr]
    assert await in_flight(redis) is None
    # Same id and revision, approved, but other bytes than the ledger stored: still refused.
    other = approved(tweet("first text"))
    await ledger.record(other, actor="w")
    forged = replace(other, payload={"text": "swapped text"})
    begun = await steps.begin(
        forged, encode_write_request(forged), ENDPOINT, actor="w", spend=SPEND
    )
    assert begun.outcome is BeginOutcome.DIFFERS
    assert (await ledger.get(other.id)).state is S.APPROVED  # type: ignore[union-attr]


async def test_begin_of_a_message_the_ledger_already_holds_sends_once(redis: Redis) -> None:
    """Two workers with the same stored message: one sends, the other finds it moved."""
    steps, _ledger = steps_for(redis)
    request = approved(tweet("twice"))
    raw = encode_write_request(request)
    first = await steps.begin(request, raw, ENDPOINT, actor="w1", spend=SPEND)
    second = await steps.begin(request, raw, ENDPOINT, actor="w2", spend=SPEND)
    assert first.outcome is BeginOutcome.SENDING
    assert second.outcome is BeginOutcome.DIFFERS  # it is `sending` now, not approved
    assert await in_flight(redis) == b"1"


async def test_settle_observes_moves_and_acks_in_one_call(redis: Redis) -> None:
    """X's headers land in the budget, the request is executed and the message is acked."""
    steps, ledger = steps_for(redis)
    request = approved(tweet("settled"))
    raw = encode_write_request(request)
    processing = keys.processing_list("w")
    await redis.rpush(processing, raw)
    await redis.hset(keys.CRASH_COUNTS, message_digest(raw), 2)
    await steps.begin(request, raw, ENDPOINT, actor="w", spend=SPEND)
    headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "42",
               "x-rate-limit-reset": "1900"}  # fmt: skip
    moved, remaining = await steps.settle(
        request.id, S.EXECUTED, from_states=[S.SENDING], actor="w", reason="created",
        result={"tweet_id": "7"}, observation=Observation("default", ENDPOINT, headers),
        ticket=QueueTicket(processing, raw),
    )  # fmt: skip
    assert moved.ok
    assert remaining == {"window": 42}
    record = await ledger.get(request.id)
    assert record is not None
    assert record.state is S.EXECUTED
    assert record.result == {"tweet_id": "7"}
    assert await redis.hget(BUDGET, "window.remaining") == b"42"
    assert await in_flight(redis) == b"0"
    assert await redis.llen(processing) == 0
    assert await redis.hexists(keys.CRASH_COUNTS, message_digest(raw)) == 0


async def test_settle_acks_even_when_someone_else_moved_the_request(redis: Redis) -> None:
    """The ledger is the truth: a lost race still retires the message, and says it lost."""
    steps, ledger = steps_for(redis)
    request = approved(tweet("raced"))
    raw = encode_write_request(request)
    processing = keys.processing_list("w")
    await redis.rpush(processing, raw)
    await steps.begin(request, raw, ENDPOINT, actor="w", spend=SPEND)
    await ledger.transition(request.id, S.UNKNOWN, from_states=[S.SENDING], actor="reconciler",
                            reason="abandoned_sending")  # fmt: skip
    moved, remaining = await steps.settle(
        request.id, S.EXECUTED, from_states=[S.SENDING], actor="w", reason="created",
        result=None, observation=None, ticket=QueueTicket(processing, raw),
    )  # fmt: skip
    assert not moved.ok
    assert moved.found_state is S.UNKNOWN
    assert remaining == {}
    assert await redis.llen(processing) == 0
    assert (await ledger.get(request.id)).state is S.UNKNOWN  # type: ignore[union-attr]


async def test_begin_auto_approves_a_pending_message_in_the_same_call(redis: Redis) -> None:
    """require_approval = false: recorded pending, moved to approved, then sending; 3 events."""
    steps, ledger = steps_for(redis)
    request = tweet("no moderation here")
    raw = encode_write_request(request)
    begun = await steps.begin(request, raw, ENDPOINT, actor="w", spend=SPEND, auto_approve=True)
    assert (begun.outcome, begun.created, begun.auto_approved) == (BeginOutcome.SENDING, True, True)
    record = await ledger.get(request.id)
    assert record is not None
    assert (record.state, record.attempt, record.last_reason) == (S.SENDING, 1, "sending")
    events = await ledger.read_events()
    assert [(e.from_state, e.to_state, e.reason) for e in events] == [
        (None, S.PENDING, "received"),
        (S.PENDING, S.APPROVED, "auto_approved"),
        (S.APPROVED, S.SENDING, "sending"),
    ]
    assert await redis.zrange(keys.state_index("pending"), 0, -1) == []
    # Without the flag a pending message is never approved by this step.
    held = tweet("must wait for a human")
    begun = await steps.begin(held, encode_write_request(held), ENDPOINT, actor="w", spend=SPEND)
    assert (begun.outcome, begun.auto_approved) == (BeginOutcome.DIFFERS, False)
    assert (await ledger.get(held.id)).state is S.PENDING  # type: ignore[union-attr]


async def test_auto_approval_blocked_by_the_budget_stays_approved(redis: Redis) -> None:
    """No room: the auto-approval stands (and says so), nothing is reserved or sent."""
    steps, ledger = steps_for(redis)
    # A window of the old layout (its own hash): begin_sending folds it in and honours it.
    window = keys.rate_limit_budget("default", ENDPOINT, "window")
    await redis.hset(window, mapping={"limit": 1, "remaining": 0, "reset": 1_900})
    request = tweet("later")
    begun = await steps.begin(
        request,
        encode_write_request(request),
        ENDPOINT,
        actor="w",
        spend=SPEND,
        auto_approve=True,
    )
    assert (begun.outcome, begun.auto_approved) == (BeginOutcome.BLOCKED, True)
    assert (await ledger.get(request.id)).state is S.APPROVED  # type: ignore[union-attr]
    assert await in_flight(redis) is None


async def test_settle_claims_the_post_first_come_in_the_same_call(redis: Redis) -> None:
    """The post id is claimed for the request; a post another request holds stays its own."""
    steps, ledger = steps_for(redis)
    first, second = approved(tweet("claim one")), approved(tweet("claim two"))
    for request in (first, second):
        await steps.begin(request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND)
    settled = []
    for request in (first, second):
        done = await steps.settle_claimed(
            request.id, S.EXECUTED, from_states=[S.SENDING], actor="w", reason="created",
            result={"tweet_id": "77"}, observation=None, ticket=None,
            claim=PostClaim("tweet", "77"),
        )  # fmt: skip
        settled.append(done)
    assert [s.holder for s in settled] == [first.id, first.id]
    assert all(s.moved.ok for s in settled)  # X's 201 is the truth for both records
    assert await redis.get(claim_key("tweet", "77")) == first.id.encode()
    assert 0 < await redis.ttl(claim_key("tweet", "77")) <= ledger.retention_s
    assert (await ledger.get(second.id)).state is S.EXECUTED  # type: ignore[union-attr]


async def test_a_refused_move_after_the_reservation_gives_it_back(redis: Redis) -> None:
    """The approval was spent already: the transition refuses after room was reserved, and
    the reservation is given back in the same call (the in-flight count is 0 again)."""
    steps, ledger = steps_for(redis)
    request = approved(tweet("spent approval"))
    assert request.approval is not None
    assert request.approval.nonce is not None
    await redis.set(keys.spent_approval(request.approval.nonce), "another-request")
    begun = await steps.begin(
        request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND
    )
    assert begun.outcome is not BeginOutcome.SENDING
    assert (await ledger.get(request.id)).state is not S.SENDING  # type: ignore[union-attr]
    assert await in_flight(redis) == b"0"
