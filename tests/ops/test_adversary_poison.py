"""Adversary: `queue stats` on a consumer registry holding junk members."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from tests.ops.conftest import invoke, run_async
from tests.writes.test_adversary_poison import junk_registry
from twitstack.core.config import Settings


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
