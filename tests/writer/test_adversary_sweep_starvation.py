"""Adversary: a head of poisoned records longer than a sweep's batch (100) holds back none of
the records behind it, and each poisoned record is quarantined (and counted) once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import anyio
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, left_unknown, running_writer, tweet, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writer.journal import WriterJournal
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writer.sweeps import expire_due
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteRequest, utcnow
from twitstack.writes.quarantine import Quarantine

S = ModerationStatus
pytestmark = pytest.mark.anyio
POISONED = 150  # more than a sweep's batch of 100
GOOD = 5
PASSES = 3


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()


async def _entries(redis: Redis) -> list[dict[str, str]]:
    return [json.loads(raw) for raw in await redis.lrange(keys.QUARANTINE, 0, -1)]


def _counted(metrics: WriterMetrics, reason: str) -> float:
    value: float = metrics.quarantined.labels(source="record", reason=reason)._value.get()
    return value


async def _expiring(ledger: RequestLedger, redis: Redis) -> tuple[list[str], list[str]]:
    """150 then 5 requests due for expiry in this order; the 150 first hashes replaced by a
    string (as anyone with Redis access may do)."""
    requests: list[WriteRequest] = [
        tweet(f"expiring {i}", expires_at=utcnow() + timedelta(milliseconds=50))
        for i in range(POISONED + GOOD)
    ]
    for order, request in enumerate(requests):
        await ledger.record(request, actor="moderation")
        await redis.zadd(keys.EXPIRY, {request.id: order + 1})
    poisoned = [request.id for request in requests[:POISONED]]
    for request_id in poisoned:
        await redis.delete(keys.request(request_id))
        await redis.set(keys.request(request_id), "junk")
    latest = max(r.expires_at for r in requests if r.expires_at is not None)
    await anyio.sleep(max((latest - utcnow()).total_seconds(), 0.0) + 0.01)
    return poisoned, [request.id for request in requests[POISONED:]]


async def _check_expiry_outcome(
    redis: Redis, poisoned: list[str], good: list[str], metrics: WriterMetrics, reason: str
) -> None:
    for request_id in good:
        assert await redis.hget(keys.request(request_id), "state") == b"expired"
    # Quarantined once each, not once per pass; and still where they were (nothing lost).
    assert _counted(metrics, reason) == POISONED
    entries = await _entries(redis)
    assert sorted(entry["ref"] for entry in entries) == sorted(poisoned)
    assert {entry["reason"] for entry in entries} == {reason}
    assert await redis.zcard(keys.EXPIRY) == POISONED
    for request_id in poisoned:
        assert await redis.get(keys.request(request_id)) == b"junk"


async def test_writer_expiry_goes_past_a_head_of_unreadable_records(redis: Redis) -> None:
    """The writer's sweep reads each record first: 150 it cannot read lead the due index;
    the first pass still expires the 5 behind them, and more passes quarantine nothing again."""
    metrics = WriterMetrics(CollectorRegistry())
    quarantine = Quarantine(redis, metrics.quarantined, service="writer")
    ledger = RequestLedger(redis, quarantine=quarantine)
    journal = WriterJournal(
        ledger, redis, metrics, RateLimitBudgets(redis, clock=lambda: 1_000.0), actor="writer:t"
    )
    poisoned, good = await _expiring(ledger, redis)
    assert await expire_due(redis, journal, quarantine) == GOOD
    for _ in range(PASSES - 1):
        assert await expire_due(redis, journal, quarantine) == 0
    await _check_expiry_outcome(redis, poisoned, good, metrics, "wrong_type")


async def test_ledger_expiry_goes_past_a_head_of_records_it_cannot_move(redis: Redis) -> None:
    """RequestLedger.expire_due moves by id: each of the 150 stops its move's script; the
    5 behind them expire in the same call."""
    metrics = WriterMetrics(CollectorRegistry())
    ledger = RequestLedger(
        redis, quarantine=Quarantine(redis, metrics.quarantined, service="writer")
    )
    poisoned, good = await _expiring(ledger, redis)
    assert await ledger.expire_due() == GOOD
    for _ in range(PASSES - 1):
        # A fresh process (its own memo) counts nothing again either.
        ledger = RequestLedger(
            redis, quarantine=Quarantine(redis, metrics.quarantined, service="writer")
        )
        assert await ledger.expire_due() == 0
    await _check_expiry_outcome(redis, poisoned, good, metrics, "script_error")


# Junk that stops the reconciler on a record, on every pass, and its quarantine reason.
RECONCILE_POISONS = {
    "notes_key_wrong_type": "redis_data_error",  # its notes key is a string
    "request_not_json": "malformed_record",  # get_many cannot parse it
}


@pytest.mark.parametrize("poison", sorted(RECONCILE_POISONS))
async def test_reconcile_goes_past_a_head_of_poisoned_records(
    make_settings: Callable[..., Settings],
    redis: Redis,
    sandbox: RunningSandbox,
    poison: str,
) -> None:
    """150 poisoned `unknown` requests ahead of 5 X never got: the writer's first sweep (the
    next is an hour away) sends the 5 again and quarantines the 150, once each."""
    settings = writer_settings(
        make_settings, sandbox.base_url, reconcile_interval_s=3600, reconcile_grace_s=0
    )
    requests = [approved(tweet(f"unknown {i}")) for i in range(POISONED + GOOD)]
    await left_unknown(redis, requests)
    poisoned = [request.id for request in requests[:POISONED]]
    for request_id in poisoned:
        if poison == "notes_key_wrong_type":
            await redis.set(keys.writer_notes(request_id), "junk")
        else:
            await redis.hset(keys.request(request_id), "request", "not json")
    good = [request.id for request in requests[POISONED:]]
    reason = RECONCILE_POISONS[poison]
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.wait_states(good, {S.EXECUTED}, timeout_s=20)
        assert writer.metric("writer_reconciliations_total", result="resent") == GOOD
        assert writer.metric("twitstack_quarantined_total", source="record", reason=reason) == (
            POISONED
        )
        # Later passes leave the quarantined records alone: not retried, not counted again.
        for _ in range(PASSES - 1):
            assert await writer.service.reconciler.sweep() == {}
        assert writer.metric("twitstack_quarantined_total", source="record", reason=reason) == (
            POISONED
        )
    assert sorted(post.text for post in sandbox.state.content.posts.values()) == sorted(
        f"unknown {i}" for i in range(POISONED, POISONED + GOOD)
    )
    entries = await _entries(redis)
    assert sorted(entry["ref"] for entry in entries) == sorted(poisoned)
    # Left where they were: still listed as unknown, for the UI and an operator.
    assert await redis.zcard(keys.state_index(S.UNKNOWN)) == POISONED


async def test_a_quarantined_record_is_taken_again_once_its_marker_is_removed(
    redis: Redis,
) -> None:
    """The runbook's way back: fix the record, SREM its marker; the next pass expires it.
    A member that is not UTF-8 (junk ZADDed by hand) is dropped, not a stop."""
    metrics = WriterMetrics(CollectorRegistry())
    quarantine = Quarantine(redis, metrics.quarantined, service="writer")
    ledger = RequestLedger(redis, quarantine=quarantine)
    journal = WriterJournal(
        ledger, redis, metrics, RateLimitBudgets(redis, clock=lambda: 1_000.0), actor="writer:t"
    )
    request = tweet("expiring", expires_at=utcnow() + timedelta(milliseconds=50))
    await ledger.record(request, actor="moderation")
    saved = await redis.hgetall(keys.request(request.id))
    await redis.delete(keys.request(request.id))
    await redis.set(keys.request(request.id), "junk")
    await redis.zadd(keys.EXPIRY, {b"\xff\xfe": 0})
    await anyio.sleep(max(((request.expires_at or utcnow()) - utcnow()).total_seconds(), 0) + 0.01)
    assert await expire_due(redis, journal, quarantine) == 0
    assert await redis.zrange(keys.EXPIRY, 0, -1) == [request.id.encode()]
    await redis.delete(keys.request(request.id))
    await redis.hset(keys.request(request.id), mapping=saved)
    assert await expire_due(redis, journal, quarantine) == 0  # still quarantined: passed over
    await redis.srem(keys.QUARANTINED_REFS, f"record:{request.id}")
    assert await expire_due(redis, journal, quarantine) == 1
    assert await redis.hget(keys.request(request.id), "state") == b"expired"


async def test_a_quarantined_request_is_still_a_rival_for_a_post(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A and B, same text, both `unknown`; A quarantined (passed over by the sweeps); X holds
    one post with that text, which may be A's. B must not claim it: counted executed, B's own
    text would never go out. A human decides."""
    settings = writer_settings(
        make_settings, sandbox.base_url, reconcile_interval_s=3600, reconcile_grace_s=0
    )
    request_a, request_b = approved(tweet("same words")), approved(tweet("same words"))
    await left_unknown(redis, [request_a, request_b])
    sandbox.state.content.create_post("1000", "same words", {"text": "same words"})
    await redis.sadd(keys.QUARANTINED_REFS, f"record:{request_a.id}")
    async with running_writer(settings, redis, sandbox) as writer:
        # The writer's one sweep (the next is an hour away) sends B to a human, or (without
        # the rivals) takes A's post for it.
        await writer.wait_states([request_b.id], {S.NEEDS_REVIEW, S.EXECUTED})
        record_b = await writer.record(request_b.id)
    assert record_b.state is S.NEEDS_REVIEW, (record_b.state, record_b.last_reason)
    assert record_b.result is None
    assert len(sandbox.state.content.posts) == 1
