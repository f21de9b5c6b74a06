"""`twitstack queue stats`: depths, requests per state, consumers and oldest ages from Redis."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from tests.ops.conftest import invoke, lines, run_async
from twitstack.core.config import Settings
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import WriteAction, WriteRequest, format_time, utcnow
from twitstack.writes.queue import ReliableQueue
from twitstack.writes.schedule import WriteSchedule


def _message(minutes_old: float) -> bytes:
    created = format_time(utcnow() - timedelta(minutes=minutes_old))
    body = {"action": "tweet", "payload": {"text": "hi"}, "created_at": created}
    return json.dumps(body).encode()


async def _seed(redis_url: str) -> None:
    """Two pending requests (oldest 2 min), one scheduled, four messages in various places."""
    redis = Redis.from_url(redis_url)
    try:
        ledger = RequestLedger(redis)
        old = WriteRequest(
            WriteAction.TWEET, {"text": "old"}, created_at=utcnow() - timedelta(seconds=120)
        )
        await ledger.record(old, actor="test")
        await ledger.record(WriteRequest(WriteAction.TWEET, {"text": "new"}), actor="test")
        await WriteSchedule(redis).add("later", utcnow() + timedelta(hours=1))
        await redis.rpush(keys.WRITE_QUEUE, _message(10), _message(5), _message(3), _message(1))
        live, gone = ReliableQueue(redis, "writer-a"), ReliableQueue(redis, "writer-b")
        await live.heartbeat()
        await gone.heartbeat()
        first = await live.take(1)
        assert first is not None
        await live.dead_letter(first, reason="invalid_json", detail="test")
        assert await live.take(1) is not None
        assert await gone.take(1) is not None
        await redis.delete(keys.heartbeat("writer-b"))  # writer-b died holding a message
    finally:
        await redis.aclose()


def test_json_stats_report_depths_states_consumers_and_ages(
    settings: Settings, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every number comes from Redis as the writer left it."""
    run_async(lambda: _seed(redis_url))
    assert invoke(settings, "queue", "stats", "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["queued"], stats["processing"], stats["dead"], stats["scheduled"]) == (1, 2, 1, 1)
    assert stats["states"]["pending"] == 2
    assert stats["states"]["approved"] == 0
    assert stats["consumers"] == [
        {"name": "writer-a", "in_flight": 1, "alive": True},
        {"name": "writer-b", "in_flight": 1, "alive": False},
    ]
    assert 119 <= stats["oldest_pending_age_s"] < 180
    assert 59 <= stats["oldest_queued_age_s"] < 120


def test_human_stats_name_each_figure(
    settings: Settings, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The console form shows depths, ages, per-state counts and a lapsed consumer."""
    run_async(lambda: _seed(redis_url))
    assert invoke(settings, "queue", "stats") == 0
    out = lines(capsys.readouterr().out)
    assert out[0].split(None, 1)[1] == "1 queued, 2 in flight, 1 dead letters, 1 scheduled"
    assert out[1].startswith("oldest pending  2m ")
    assert out[2].startswith("oldest queued   1m ")
    assert "pending 2" in out[3]
    assert "consumer        writer-b: 1 in flight (heartbeat lapsed)" in out


def test_empty_queue_has_no_ages(
    settings: Settings, capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    """Nothing waiting: zero depths and null ages; an unreadable head message has no age."""
    assert invoke(settings, "queue", "stats", "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["queued"], stats["oldest_pending_age_s"], stats["oldest_queued_age_s"]) == (
        0,
        None,
        None,
    )

    async def push_garbage() -> None:
        redis = Redis.from_url(redis_url)
        await redis.rpush(keys.WRITE_QUEUE, b"\xff not json")
        await redis.aclose()

    run_async(push_garbage)
    assert invoke(settings, "queue", "stats", "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["queued"], stats["oldest_queued_age_s"]) == (1, None)
