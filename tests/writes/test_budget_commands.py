"""What the rate-limit budget and spend ledger scripts cost in Redis commands per send, as
INFO commandstats counts them (commands inside a script count), on a real redis-server; the
behaviour the cheaper layout keeps (key lifetimes, the in-flight count's lapse, skipped writes,
large counts, junk); and the upgrade from the old layout (a window hash per window, an
in-flight counter key, a caps hash per period, budget pauses without a note)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from redis.asyncio import Redis

from twitstack.core.sections.spend import SpendSettings
from twitstack.writer.ratelimit import budget_keys, observe_args
from twitstack.writes import keys, scripts
from twitstack.writes.spend import (
    BudgetView,
    Periods,
    caps_in_force,
    read_rollup,
    spend_args,
    spend_keys,
)

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000.0
P = Periods.at(NOW)
POST = 15_000
TTL_MS = 120_000
BUDGET = keys.rate_limit_budgets("a", "tweets.create")
OLD_WINDOW = keys.rate_limit_budget("a", "tweets.create", "window")
OLD_DAILY = keys.rate_limit_budget("a", "tweets.create", "24h")
OLD_IN_FLIGHT = keys.rate_limit_in_flight("a", "tweets.create")
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


async def reserve(
    redis: Redis, spend: SpendSettings, now: float = NOW, account: str = "a"
) -> tuple[Any, Counter[str]]:
    return await commands(
        redis,
        scripts.register(redis, "budget_reserve"),
        keys=[*budget_keys(account, "tweets.create"), *spend_keys(account, P)],
        args=[repr(now), TTL_MS, *spend_args(spend, account, "post", POST, P)],
    )


async def observe(redis: Redis, seen: dict[str, str]) -> tuple[Any, Counter[str]]:
    return await commands(
        redis,
        scripts.register(redis, "budget_observe"),
        keys=budget_keys("a", "tweets.create"),
        args=observe_args(seen, reserved=True),
    )


async def pending(redis: Redis) -> bytes | None:
    value: bytes | None = await redis.hget(BUDGET, "pending")
    return value


async def redis_ms(redis: Redis) -> int:
    """Redis's clock (TIME) in epoch ms: the clock of `pending.until`."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def pending_until(redis: Redis) -> int:
    return int(await redis.hget(BUDGET, "pending.until"))


async def test_a_reservation_with_its_spend_charge_costs_7_commands(redis: Redis) -> None:
    await reserve(redis, CAPPED)  # the hashes start (their EXPIREs, the layout marks)
    await observe(redis, headers(50, int(NOW) + 600, 500))
    before = await redis_ms(redis)
    reply, counted = await reserve(redis, CAPPED)
    after = await redis_ms(redis)
    assert reply[0] == b"0"
    # Was 11: GET + SET of the in-flight counter, HMGET x2 of the windows; HMGET x2 of the
    # rollups, HMGET x2 of the raised caps, HGET of the pause, HSET x2 of the rollups. TIME:
    # the grant stamps `pending.until` on Redis's clock, not the writer's (NOW here).
    assert counted == {"hmget": 3, "hset": 3, "time": 1}
    assert await pending(redis) == b"1"
    assert before + TTL_MS <= await pending_until(redis) <= after + TTL_MS


async def test_a_refusal_with_nothing_in_flight_reads_no_clock(redis: Redis) -> None:
    await observe(redis, headers(0, int(NOW) + 600, 500))
    await redis.hset(BUDGET, "pending", 0)
    blocked, counted = await reserve(redis, SpendSettings())
    assert blocked[0] == str(int(NOW) + 600).encode()
    assert "time" not in counted


async def test_the_first_reservation_starts_lifetimes_and_looks_for_the_old_layout(
    redis: Redis,
) -> None:
    _, counted = await reserve(redis, CAPPED)
    # The budget hash: the old windows' HMGETs, the old counter's GET + PTTL, its HSET with
    # the layout mark, its EXPIRE, the DEL of the old keys; the rollups: the old caps hashes'
    # HGETALL, and their EXPIREs.
    # TIME, for the grant's `pending.until`.
    assert counted == {"hmget": 5, "get": 1, "pttl": 1, "hset": 4, "expire": 3, "del": 1,
                       "hgetall": 2, "time": 1}  # fmt: skip
    _, counted = await reserve(redis, CAPPED)
    assert counted == {"hmget": 3, "hset": 3, "time": 1}


async def test_observing_an_answer_costs_a_read_and_a_write(redis: Redis) -> None:
    await reserve(redis, CAPPED)
    reply, counted = await observe(redis, headers(50, int(NOW) + 600, 500))
    assert reply == [50, 500]
    # New windows: the key's lifetime starts again.
    assert counted == {"hmget": 1, "hset": 1, "expire": 1}
    await reserve(redis, CAPPED)
    reply, counted = await observe(redis, headers(49, int(NOW) + 600, 499))
    assert reply == [49, 499]
    # Was 5: HMGET x2, HSET x2, DECR.
    assert counted == {"hmget": 1, "hset": 1}
    assert await pending(redis) == b"0"
    await reserve(redis, CAPPED)
    # A late answer with a higher count of the same windows changes only the count in flight.
    reply, counted = await observe(redis, headers(60, int(NOW) + 600, 700))
    assert reply == [49, 499]
    assert counted == {"hmget": 1, "hset": 1}
    assert await redis.hmget(BUDGET, ["window.remaining", "24h.remaining", "pending"]) == [
        b"49",
        b"499",
        b"0",
    ]


async def test_a_same_window_write_keeps_the_lifetime_a_new_window_renews_it(
    redis: Redis,
) -> None:
    await observe(redis, headers(50, int(NOW) + 600, 500))
    await redis.expire(BUDGET, 1_000)
    await observe(redis, headers(40, int(NOW) + 600, 400))
    assert await redis.hget(BUDGET, "window.remaining") == b"40"
    assert 0 < await redis.ttl(BUDGET) <= 1_000
    await observe(redis, headers(99, int(NOW) + 1_500, 399))
    assert await redis.hmget(BUDGET, ["window.limit", "window.remaining", "window.reset"]) == [
        b"100",
        b"99",
        str(int(NOW) + 1_500).encode(),
    ]
    assert await redis.ttl(BUDGET) > 1_000


async def test_the_in_flight_count_lapses_ttl_after_the_last_reservation(redis: Redis) -> None:
    """A crashed writer's reservations stop counting as the old counter's PX made them: the
    whole count lapses `ttl` after the last reservation, and each reservation renews it, all
    on Redis's clock: the writers' clocks (`now`) move neither the stamp nor the lapse."""
    await observe(redis, headers(2, int(NOW) + 600, 500))
    assert (await reserve(redis, SpendSettings()))[0][0] == b"0"
    first = await pending_until(redis)
    before = await redis_ms(redis)
    assert (await reserve(redis, SpendSettings(), now=NOW - 300))[0][0] == b"0"
    after = await redis_ms(redis)
    # The second reservation renewed the stamp, from Redis's clock (its writer runs 300 s behind).
    assert first <= before + TTL_MS <= await pending_until(redis) <= after + TTL_MS
    # Two in flight of the 2 X reported left: full, whatever the reader's clock says, until the
    # last one's lifetime ends on Redis's clock.
    for now in (NOW - 300, NOW, NOW + 60 + TTL_MS / 1000, NOW + 599):
        blocked, _ = await reserve(redis, SpendSettings(), now=now)
        assert blocked[0] == str(int(NOW) + 600).encode()
    # Redis's clock past the stamp (set back rather than waited for): the count is void.
    await redis.hset(BUDGET, "pending.until", await redis_ms(redis) - 1)
    granted, _ = await reserve(redis, SpendSettings())
    assert granted[0] == b"0"
    assert await pending(redis) == b"1"


async def test_retiring_a_junk_or_negative_in_flight_count_leaves_0(redis: Redis) -> None:
    for junk in ("1.5", "-3", "x", "1e300"):
        await redis.hset(BUDGET, mapping={"pending": junk, "layout": "2"})
        await observe(redis, headers(50, int(NOW) + 600, 500))
        assert await pending(redis) == b"0"
    release = scripts.register(redis, "budget_release")
    for junk in ("1.5", "-3", "x"):
        await redis.hset(BUDGET, "pending", junk)
        await release(keys=[BUDGET])
        assert await pending(redis) == b"0"
    # A budget key of another type is dropped; the hash that replaces it has a lifetime.
    await redis.delete(BUDGET)
    await redis.set(BUDGET, "junk")
    await release(keys=[BUDGET])
    assert await pending(redis) == b"0"
    assert await redis.ttl(BUDGET) > 0


async def test_junk_in_the_budget_hash_reads_as_unknown_and_is_overwritten(redis: Redis) -> None:
    await redis.hset(BUDGET, mapping={"window.reset": "junk", "window.remaining": "nan",
                                      "pending": "1e300", "pending.until": "inf",
                                      "layout": "2"})  # fmt: skip
    reply, _ = await reserve(redis, SpendSettings())
    assert reply[0] == b"0"
    assert await pending(redis) == b"1"
    await redis.delete(BUDGET)
    await redis.rpush(BUDGET, "a list")
    reply, _ = await reserve(redis, SpendSettings())
    assert reply[0] == b"0"
    assert await redis.type(BUDGET) == b"hash"
    assert await pending(redis) == b"1"


async def test_large_counts_are_written_and_answered_as_integers(redis: Redis) -> None:
    big = 100_000_000_000_000  # 15 digits: Lua's tostring would write 1e+14
    await redis.hset(keys.spend_rollup(P.day), mapping={"a|post": big, "a|*": big, "*|*": big})
    reply, _ = await reserve(redis, SpendSettings())
    assert BudgetView.parse(reply[2:]).spent[0] == big + POST
    assert await redis.hgetall(keys.spend_rollup(P.day)) == {
        b"a|post": str(big + POST).encode(),
        b"a|*": str(big + POST).encode(),
        b"*|*": str(big + POST).encode(),
        b"layout": b"2",
    }


# --- the upgrade from the old layout ------------------------------------------------------


async def old_layout(redis: Redis) -> None:
    """What a writer of the old layout left: its windows, 2 requests in flight, a raised cap
    for the day (account a), one for the month (everything), and one for another account."""
    await redis.hset(OLD_WINDOW, mapping={"limit": 100, "remaining": 3, "reset": int(NOW) + 600})
    await redis.hset(OLD_DAILY, mapping={"limit": 1000, "remaining": 800,
                                         "reset": int(NOW) + 80_000})  # fmt: skip
    await redis.set(OLD_IN_FLIGHT, 2, px=60_000)
    day = {"a|post": 10 * POST, "a|*": 10 * POST, "*|*": 12 * POST}
    await redis.hset(keys.spend_rollup(P.day), mapping=day)
    month = {"a|post": 40 * POST, "a|*": 40 * POST, "*|*": 50 * POST}
    await redis.hset(keys.spend_rollup(P.month), mapping=month)
    await redis.hset(keys.spend_caps(P.day), mapping={"a": 11 * POST, "b": 7 * POST})
    await redis.hset(keys.spend_caps(P.month), "*", 51 * POST)


async def test_an_old_layout_keeps_its_windows_in_flight_count_caps_and_totals(
    redis: Redis,
) -> None:
    """Migrate on read: the first script to touch a budget hash or a period's rollup folds the
    old keys in (the windows and the count once, then dropped; the caps with the first charge)."""
    await old_layout(redis)
    # Configured caps that the raised ones lift: a's day 0.15 -> 0.165, total month 0.75 ->
    # 0.765 (0.15 USD = 10 posts).
    spend = SpendSettings.model_validate(
        {"total": {"monthly_usd": 0.75}, "accounts": {"a": {"daily_usd": 0.15}}}
    )
    # Before anything runs, readers (moderation, CLI, writer status) see the raised caps.
    assert (await caps_in_force(redis, spend, "a", NOW))["day"].micros == 11 * POST
    assert (await caps_in_force(redis, spend, "b", NOW))["day"].micros == 7 * POST
    # The old counter's lifetime is carried over on Redis's clock, as the new reservation's is:
    # the writer's clock (NOW, not Redis's) plays no part in it.
    reply, _ = await reserve(redis, spend)
    assert reply[0] == b"0"  # the raised day cap applies: 10 posts spent, 11 allowed
    view = BudgetView.parse(reply[2:])
    assert view.caps == (11 * POST, -1, -1, 51 * POST)
    assert view.spent == (11 * POST, 41 * POST, 13 * POST, 51 * POST)  # totals kept
    # The old window: 3 left, 2 in flight from the old writer (kept for their lifetime), 1 now.
    assert await redis.hmget(BUDGET, ["window.remaining", "24h.remaining", "pending"]) == [
        b"3",
        b"800",
        b"3",
    ]
    assert await redis.exists(OLD_WINDOW, OLD_DAILY, OLD_IN_FLIGHT) == 0
    rate_only = scripts.register(redis, "budget_reserve")
    blocked = await rate_only(keys=budget_keys("a", "tweets.create"), args=[repr(NOW), TTL_MS])
    assert blocked == str(int(NOW) + 600).encode()  # the rate window was not reset
    # The caps moved into the rollups, with every other account's: still in force.
    day = await redis.hgetall(keys.spend_rollup(P.day))
    assert day[b"a|*|cap"] == b"%d" % (11 * POST)
    assert day[b"b|*|cap"] == b"%d" % (7 * POST)
    month = await redis.hgetall(keys.spend_rollup(P.month))
    assert month[b"*|*|cap"] == b"%d" % (51 * POST)
    await redis.delete(keys.spend_caps(P.day), keys.spend_caps(P.month))
    assert (await caps_in_force(redis, spend, "a", NOW))["day"].micros == 11 * POST
    assert (await caps_in_force(redis, spend, "b", NOW))["day"].micros == 7 * POST
    # b's first send of the day: its old cap is in force, and the month's raised total (51
    # posts, all spent) holds it.
    b_settings = SpendSettings.model_validate({"accounts": {"b": {"daily_usd": 0.0}}})
    reply, _ = await reserve(redis, b_settings, account="b")
    view = BudgetView.parse(reply[2:])
    assert (reply[0], view.blocked) == (b"budget", "total|month")
    assert view.caps == (7 * POST, -1, -1, 51 * POST)
    assert (await read_rollup(redis, P.day)).by_account == {"a": 11 * POST}


async def test_an_old_cap_higher_than_a_new_one_wins_until_folded_in(redis: Redis) -> None:
    """Caps only go up: while a period's old caps hash is read, the higher value applies."""
    spend = SpendSettings.model_validate({"accounts": {"a": {"daily_usd": 0.0}}})
    await redis.hset(keys.spend_caps(P.day), "a", 2 * POST)
    await redis.hset(keys.spend_rollup(P.day), "a|*|cap", POST)
    reply, _ = await reserve(redis, spend)
    assert reply[0] == b"0"
    assert BudgetView.parse(reply[2:]).caps[0] == 2 * POST
    assert await redis.hget(keys.spend_rollup(P.day), "a|*|cap") == b"%d" % (2 * POST)


async def test_a_budget_pause_of_the_old_layout_ends_with_a_charge_once_noted(
    redis: Redis,
) -> None:
    """A budget pause set before the holds were noted is noted by the writer's gauge refresh
    (SpendLedger.refresh); a charge then ends it as before. Unnoted, the charge does not read
    the pause (no command spent on it)."""
    await redis.hset(keys.account_paused("a"), mapping={"reason": "budget", "until": "9",
                                                        "budget": "account|day"})  # fmt: skip
    await reserve(redis, SpendSettings())
    assert await redis.hget(keys.account_paused("a"), "reason") == b"budget"
    await redis.hset(keys.spend_rollup(P.day), "a|*|held", "1")
    reply, counted = await reserve(redis, SpendSettings())
    assert reply[0] == b"0"
    assert await redis.exists(keys.account_paused("a")) == 0
    assert await redis.hget(keys.spend_rollup(P.day), "a|*|held") is None
    assert counted == {"hmget": 3, "hset": 3, "hget": 1, "del": 1, "hdel": 1, "time": 1}
