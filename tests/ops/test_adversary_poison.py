"""Adversary: `queue stats` on a consumer registry holding junk members."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from tests.ops.conftest import invoke, run_async
from tests.writes.test_adversary_poison import junk_registry
from twitstack.core.config import Settings
from twitstack.writes import keys


def test_queue_stats_reads_past_junk_consumer_members(
    settings: Settings, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`queue stats` still reports, listing the consumers it can read."""

    async def seed() -> None:
        redis = Redis.from_url(redis_url)
        try:
            await junk_registry(redis)
        finally:
            await redis.aclose()

    run_async(seed)
    assert invoke(settings, "queue", "stats", "--json") == 0
    out = capsys.readouterr().out
    # The test process logs to stdout (the real CLI sends logs to stderr): skip those lines.
    stats = json.loads(out[out.index("{") :])
    assert stats["processing"] == 2
    assert {"name": "c1", "in_flight": 2, "alive": False} in stats["consumers"]


JUNK_LETTERS = [
    b"\xff\xfe not utf-8",
    b"[]",
    b"null",
    b'{"reason": {"deep": [1, 2]}, "message": 5, "time": 1e400}',
    b'{"reason_code": "x", "message": "' + b"\\ud800" + b'"}',
    b'{"reason": "x", "message": "' + "é".encode() * 100_000 + b'", "consumer": []}',
    b'{"reason": "x", "payload": "{\\"action\\": \\"dm\\", \\"payload\\": []}"}',
]


def test_dlq_list_and_retry_all_read_past_junk_entries(
    settings: Settings, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every junk entry is listed; retry --all moves the retryable ones and names the rest."""

    async def seed() -> None:
        redis = Redis.from_url(redis_url)
        try:
            await redis.rpush(keys.DEAD_LETTER, *JUNK_LETTERS)
        finally:
            await redis.aclose()

    run_async(seed)
    assert invoke(settings, "dlq", "list", "--json") == 0
    out = capsys.readouterr().out
    listed = json.loads(out[out.index("{") :])
    assert listed["total"] == len(JUNK_LETTERS)
    assert invoke(settings, "dlq", "list") == 0
    capsys.readouterr()
    assert invoke(settings, "dlq", "retry", "--all") in (0, 1)
    assert invoke(settings, "queue", "stats") == 0
