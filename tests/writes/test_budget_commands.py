"""What the rate-limit budget and spend ledger scripts cost in Redis commands per send, as
INFO commandstats counts them (commands inside a script count), on a real redis-server; and
the behaviour the cheaper scripts keep: key lifetimes, skipped writes, large counts."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from redis.asyncio import Redis

from twitstack.core.sections.spend import SpendSettings
from twitstack.writer.ratelimit import budget_keys, observe_args
from twitstack.writes import keys, scripts
from twitstack.writes.spend import BudgetView, Periods, spend_args, spend_keys

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000.0
P = Periods.at(NOW)
POST = 15_000
WINDOW = keys.rate_limit_budget("a", "tweets.create", "window")
DAILY = keys.rate_limit_budget("a", "tweets.create", "24h")
IN_FLIGHT = keys.rate_limit_in_flight("a", "tweets.create")
CAPPED = SpendSettings.model_validate(
    {"total": {"daily_usd": 1e5, "monthly_usd": 1e5},
     "accounts": {"a": {"daily_usd": 1e5, "monthly_usd": 1e5}}}
)  # fmt: skip


def headers(window_remaining: int, window_reset: int, daily_remaining: int) -> dict[str, str]:
    return {
        "x-rate-limit-limit": "100",
        "x-rate-limit-remaining": str(window_remaining),
        "x-rate-limit-reset": str(window_reset),
        "x-user-limit-24hour-limit": "1000",
        "x-user-limit-24hour-remaining": str(daily_remaining),
        "x-user-limit-24hour-reset": str(int(NOW) + 80_000),
    }


async def commands(redis: Redis, script: Any, **call: Any) -> tuple[Any, Counter[str]]:
    """The script's reply and the commands it ran (EVALSHA itself left out), by name."""
    await redis.config_resetstat()
    reply = await script(**call)
    stats = await redis.info("commandstats")
    counted: Counter[str] = Counter()
    for name, row in stats.items():
        command = name.removeprefix("cmdstat_")
        if command not in ("evalsha", "eval", "config|resetstat", "info"):
            counted[command] = int(row["calls"])
    return reply, counted


async def reserve(redis: Redis, spend: SpendSettings) -> tuple[Any, Counter[str]]:
    return await commands(
        redis,
        scripts.register(redis, "budget_reserve"),
        keys=[*budget_keys("a", "tweets.create"), *spend_keys("a", P)],
        args=[repr(NOW), 120_000, *spend_args(spend, "a", "post", POST, P)],
    )


async def observe(redis: Redis, seen: dict[str, str]) -> tuple[Any, Counter[str]]:
    return await commands(
        redis,
        scripts.register(redis, "budget_observe"),
        keys=budget_keys("a", "tweets.create"),
        args=observe_args(seen, reserved=True),
    )


async def test_a_reservation_with_its_spend_charge_costs_11_commands(redis: Redis) -> None:
    await reserve(redis, CAPPED)  # the period's rollups start (their EXPIREs)
    await observe(redis, headers(50, int(NOW) + 600, 500))
    reply, counted = await reserve(redis, CAPPED)
    assert reply[0] == b"0"
    # Was 16: GET, HMGET x2, INCR, PEXPIRE; HMGET x4, HGET, HINCRBY x6.
    assert counted == {"get": 1, "hmget": 6, "set": 1, "hget": 1, "hset": 2}
    assert await redis.get(IN_FLIGHT) == b"1"
    assert 0 < await redis.pttl(IN_FLIGHT) <= 120_000


async def test_the_first_charge_of_a_period_also_starts_its_rollups_lifetimes(
    redis: Redis,
) -> None:
    _, counted = await reserve(redis, CAPPED)
    assert counted == {"get": 1, "hmget": 6, "set": 1, "hget": 1, "hset": 2, "expire": 2}


async def test_observing_an_answer_costs_2_reads_and_a_write_per_changed_window(
    redis: Redis,
) -> None:
    await reserve(redis, CAPPED)
    reply, counted = await observe(redis, headers(50, int(NOW) + 600, 500))
    assert reply == [50, 500]
    # A new window each: its HSET and the key's lifetime.
    assert counted == {"hmget": 2, "hset": 2, "expire": 2, "decr": 1}
    await reserve(redis, CAPPED)
    reply, counted = await observe(redis, headers(49, int(NOW) + 600, 499))
    assert reply == [49, 499]
    # Was 8: HMGET x2, HSET x2, EXPIRE x2, GET, DECR.
    assert counted == {"hmget": 2, "hset": 2, "decr": 1}
    await reserve(redis, CAPPED)
    # A late answer with a higher count of the same windows changes nothing: no write.
    reply, counted = await observe(redis, headers(60, int(NOW) + 600, 700))
    assert reply == [49, 499]
    assert counted == {"hmget": 2, "decr": 1}


async def test_a_same_window_write_keeps_the_lifetime_a_new_window_renews_it(
    redis: Redis,
) -> None:
    await observe(redis, headers(50, int(NOW) + 600, 500))
    await redis.expire(WINDOW, 1_000)
    await observe(redis, headers(40, int(NOW) + 600, 400))
    assert await redis.hget(WINDOW, "remaining") == b"40"
    assert 0 < await redis.ttl(WINDOW) <= 1_000
    await observe(redis, headers(99, int(NOW) + 1_500, 399))
    assert await redis.hgetall(WINDOW) == {
        b"limit": b"100",
        b"remaining": b"99",
        b"reset": str(int(NOW) + 1_500).encode(),
    }
    assert await redis.ttl(WINDOW) > 1_000


async def test_retiring_a_junk_or_negative_in_flight_counter_leaves_0(redis: Redis) -> None:
    for junk in ("1.5", "-3", "x"):
        await redis.set(IN_FLIGHT, junk)
        await observe(redis, headers(50, int(NOW) + 600, 500))
        assert await redis.get(IN_FLIGHT) == b"0"
    await redis.delete(IN_FLIGHT)
    await redis.hset(IN_FLIGHT, "a", "b")
    await observe(redis, headers(50, int(NOW) + 600, 500))
    assert await redis.get(IN_FLIGHT) == b"0"


async def test_a_counter_too_large_to_be_a_count_is_dropped(redis: Redis) -> None:
    await redis.set(IN_FLIGHT, "1e300")
    await observe(redis, headers(5, int(NOW) + 600, 500))
    reply, _ = await reserve(redis, SpendSettings())
    assert reply[0] == b"0"
    assert await redis.get(IN_FLIGHT) == b"1"


async def test_large_counts_are_written_and_answered_as_integers(redis: Redis) -> None:
    big = 100_000_000_000_000  # 15 digits: Lua's tostring would write 1e+14
    await redis.hset(keys.spend_rollup(P.day), mapping={"a|post": big, "a|*": big, "*|*": big})
    reply, _ = await reserve(redis, SpendSettings())
    assert BudgetView.parse(reply[2:]).spent[0] == big + POST
    assert await redis.hgetall(keys.spend_rollup(P.day)) == {
        b"a|post": str(big + POST).encode(),
        b"a|*": str(big + POST).encode(),
        b"*|*": str(big + POST).encode(),
    }
