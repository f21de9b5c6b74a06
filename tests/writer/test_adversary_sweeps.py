"""Adversary: one record a sweep fails on (a script stopped by its data, a key of the wrong
type) is quarantined, and the same sweep goes on with every record after it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

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
from twitstack.writes.ledger_types import LedgerRecord
from twitstack.writes.models import ModerationStatus, WriteRequest, utcnow
from twitstack.writes.quarantine import Quarantine

S = ModerationStatus
pytestmark = pytest.mark.anyio
N = 5
MIDDLE = 2


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()


async def _quarantined(redis: Redis) -> list[dict[str, str]]:
    return [json.loads(raw) for raw in await redis.lrange(keys.QUARANTINE, 0, -1)]


def _poison_after_read(
    real: Callable[..., Awaitable[list[LedgerRecord]]], redis: Redis, victim: str
) -> Callable[..., Awaitable[list[LedgerRecord]]]:
    """`real` (a get_many), after which `victim`'s hash is overwritten by a string (as someone
    with Redis access may do between a sweep's read and its move): the move's Lua script then
    stops with WRONGTYPE."""

    async def get_many(*args: Any, **kwargs: Any) -> list[LedgerRecord]:
        records = await real(*args, **kwargs)
        if victim in args[-1]:
            await redis.set(keys.request(victim), "junk")
        return records

    return get_many


# Per record junk that stops the reconciler's work on that record, on every pass.
RECONCILE_POISONS = {
    # A plain command refused: its notes key (attempt window, re-send count) is a string.
    "notes_key_wrong_type": "redis_data_error",
    # The move's Lua script stopped: its hash was replaced after the sweep read it.
    "script_error": "script_error",
    # Junk in its notes hash the code cannot count with.
    "notes_junk_count": "sweep_error",
}


@pytest.mark.parametrize("poison", sorted(RECONCILE_POISONS))
async def test_reconcile_sweep_goes_past_a_record_it_fails_on(
    make_settings: Callable[..., Settings],
    redis: Redis,
    sandbox: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    poison: str,
) -> None:
    """Five `unknown` requests X never got, the middle one poisoned: the writer's one sweep
    (the next is an hour away) sends the other four again and quarantines the middle one,
    counted and left as it was."""
    settings = writer_settings(
        make_settings, sandbox.base_url, reconcile_interval_s=3600, reconcile_grace_s=0
    )
    requests = [approved(tweet(f"unknown {i}")) for i in range(N)]
    # The sweep takes them oldest first: this order, the poisoned one in the middle.
    await left_unknown(redis, requests)
    victim = requests[MIDDLE].id
    if poison == "notes_key_wrong_type":
        await redis.set(keys.writer_notes(victim), "junk")
    elif poison == "notes_junk_count":
        await redis.hset(keys.writer_notes(victim), "resends", "junk")
    else:
        poisoned = _poison_after_read(RequestLedger.get_many, redis, victim)
        monkeypatch.setattr(RequestLedger, "get_many", poisoned)
    others = [request.id for request in requests if request.id != victim]
    reason = RECONCILE_POISONS[poison]
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.wait_states(others, {S.EXECUTED}, timeout_s=10)
        assert writer.metric("writer_reconciliations_total", result="resent") == N - 1
        assert writer.metric("twitstack_quarantined_total", source="record", reason=reason) == 1
    assert [post.text for post in sandbox.state.content.posts.values()] == [
        f"unknown {i}" for i in range(N) if i != MIDDLE
    ]
    [entry] = await _quarantined(redis)
    assert (entry["service"], entry["source"], entry["ref"], entry["reason"]) == (
        "writer", "record", victim, reason,
    )  # fmt: skip


def _expiring(text: str) -> WriteRequest:
    return tweet(text, expires_at=utcnow() + timedelta(milliseconds=50))


async def _past_expiry(requests: list[WriteRequest]) -> None:
    """Wait until every request's `expires_at` (50 ms ahead) has passed by this host's clock."""
    latest = max(request.expires_at for request in requests if request.expires_at is not None)
    await anyio.sleep(max((latest - utcnow()).total_seconds(), 0.0) + 0.01)


async def test_expiry_sweep_goes_past_a_record_whose_move_fails(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five overdue requests, the middle one's move stopped by a script error: the other four
    expire in the same sweep, the middle one is quarantined and counted."""
    ledger = RequestLedger(redis)
    metrics = WriterMetrics(CollectorRegistry())
    quarantine = Quarantine(redis, metrics.quarantined, service="writer")
    journal = WriterJournal(
        ledger, redis, metrics, RateLimitBudgets(redis, clock=lambda: 1_000.0), actor="writer:t"
    )
    requests = [_expiring(f"expiring {i}") for i in range(N)]
    for order, request in enumerate(requests):
        await ledger.record(request, actor="moderation")
        await redis.zadd(keys.EXPIRY, {request.id: order + 1})  # due, in this order
    victim = requests[MIDDLE].id
    monkeypatch.setattr(ledger, "get_many", _poison_after_read(ledger.get_many, redis, victim))
    await _past_expiry(requests)
    assert await expire_due(redis, journal, quarantine) == N - 1
    for request in requests:
        if request.id != victim:
            assert await redis.hget(keys.request(request.id), "state") == b"expired"
    assert metrics.quarantined.labels(source="record", reason="script_error")._value.get() == 1
    [entry] = await _quarantined(redis)
    assert (entry["ref"], entry["reason"]) == (victim, "script_error")


async def test_ledger_expiry_goes_past_a_record_of_the_wrong_type(redis: Redis) -> None:
    """RequestLedger.expire_due moves by id without reading first: a request hash that is a
    string (written by hand) stops that move's script; it is quarantined, the others expire."""
    registry = CollectorRegistry()
    quarantine = Quarantine(redis, WriterMetrics(registry).quarantined, service="writer")
    ledger = RequestLedger(redis, quarantine=quarantine)
    requests = [_expiring(f"expiring {i}") for i in range(N)]
    for order, request in enumerate(requests):
        await ledger.record(request, actor="moderation")
        await redis.zadd(keys.EXPIRY, {request.id: order + 1})
    victim = requests[MIDDLE].id
    await redis.delete(keys.request(victim))
    await redis.set(keys.request(victim), "junk")
    await _past_expiry(requests)
    assert await ledger.expire_due() == N - 1
    [entry] = await _quarantined(redis)
    assert (entry["ref"], entry["reason"]) == (victim, "script_error")
