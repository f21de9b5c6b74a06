"""Spend the ledger cannot read is shown as unreadable (and reported), never as $0."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from twitstack.core.config import Settings
from twitstack.writer.commands import _status_lines
from twitstack.writes import keys
from twitstack.writes.spend import TOTAL, Periods, parse_rollup, read_rollup

pytestmark = pytest.mark.anyio


def test_a_total_that_cannot_be_read_is_unreadable_not_zero() -> None:
    rollup = parse_rollup(
        "2026-12-05",
        {b"a|*": b"x", b"a|post": b"5", b"b|*": b"1e3", b"*|*": b"-4", b"c|*": b"7"},
    )
    assert rollup.spent("a") is None
    assert rollup.spent("b") == 1_000  # a number, as the writer's script reads it
    assert rollup.spent(TOTAL) is None
    assert rollup.spent("c") == 7
    assert rollup.spent("nobody") == 0
    assert rollup.unreadable == {"a", TOTAL}


async def test_a_rollup_of_another_type_reads_as_unreadable(redis: Redis) -> None:
    await redis.set(keys.spend_rollup("2026-12-05"), "not a hash")
    rollup = await read_rollup(redis, "2026-12-05")
    assert rollup.wrong_type
    assert rollup.spent(TOTAL) is None
    assert rollup.spent("anyone") is None


async def test_writer_status_shows_unreadable_spend_not_zero(
    make_settings: Callable[..., Settings], redis_url: str, redis: Redis
) -> None:
    settings = make_settings(
        redis_url=redis_url,
        writer={"accounts": [{"name": "main", "user_id": "2000", "access_token_secret": "T"}]},
        spend={"accounts": {"main": {"daily_usd": 1.0}}},
    )
    now = Periods.at(time.time())
    await redis.set(keys.spend_rollup(now.day), "not a hash")
    await redis.hset(keys.spend_rollup(now.month), mapping={"main|*": "junk", "*|*": "15000"})
    lines = await _status_lines(settings)
    [total] = [line for line in lines if line.startswith("spend all accounts:")]
    assert total == "spend all accounts: today UNREADABLE (no cap), this month $0.015 (no cap)"
    [mine] = [line for line in lines if line.startswith("  spend ")]
    assert mine == "  spend today UNREADABLE (cap $1.00), this month UNREADABLE (no cap)"
    # Reported too: logged once per process here (the CLI has no quarantine to count in).
    assert await redis.llen(keys.QUARANTINE) == 0
