"""The spend ledger's Lua (lua/spend_core.lua) on a real Redis: caps, charges, refunds, pauses,
rollup lifetimes and hostile values, through the scripts the writer calls."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from twitstack.core.sections.spend import SpendSettings
from twitstack.writer.ratelimit import budget_keys
from twitstack.writes import keys, scripts
from twitstack.writes.spend import BudgetView, Periods, raise_cap, spend_args, spend_keys

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
P = Periods.at(NOW)
POST = 15_000


def settings(**caps: Any) -> SpendSettings:
    return SpendSettings.model_validate(caps)


async def reserve(redis: Redis, spend: SpendSettings, micros: int = POST) -> list[Any]:
    script = scripts.register(redis, "budget_reserve")
    reply: list[Any] = await script(
        keys=[*budget_keys("a", "tweets.create"), *spend_keys("a", P)],
        args=[repr(NOW), 120_000, *spend_args(spend, "a", "post", micros, P)],
    )
    return reply


async def rollup(redis: Redis, period: str) -> dict[str, int]:
    """The rollup's spend fields (not its raised caps, hold notes or layout mark)."""
    raw = await redis.hgetall(keys.spend_rollup(period))
    return {
        k.decode(): int(v)
        for k, v in raw.items()
        if k != b"layout" and not k.endswith((b"|*|cap", b"|*|held"))
    }


async def test_charges_until_the_cap_then_holds_and_pauses(redis: Redis) -> None:
    spend = settings(accounts={"a": {"daily_usd": 0.03}})
    assert (await reserve(redis, spend))[0] == b"0"
    assert (await reserve(redis, spend))[0] == b"0"
    held = await reserve(redis, spend)
    assert held[:2] == [b"budget", repr(P.day_end).encode()]
    view = BudgetView.parse(held[2:])
    assert view.blocked == "account|day"
    assert view.spent == (2 * POST, 2 * POST, 2 * POST, 2 * POST)
    assert view.caps == (30_000, -1, -1, -1)
    assert await rollup(redis, P.day) == {"a|post": 2 * POST, "a|*": 2 * POST, "*|*": 2 * POST}
    pause = await redis.hgetall(keys.account_paused("a"))
    assert pause == {b"reason": b"budget", b"until": repr(P.day_end).encode(),
                     b"budget": b"account|day"}  # fmt: skip
    # The hold is noted in the blocking period's rollup: the next charge reads the pause.
    assert await redis.hget(keys.spend_rollup(P.day), "a|*|held") == b"1"
    assert await redis.hget(keys.spend_rollup(P.month), "a|*|held") is None
    ttl_day = await redis.ttl(keys.spend_rollup(P.day))
    ttl_month = await redis.ttl(keys.spend_rollup(P.month))
    assert 0 < ttl_day <= spend.day_retention_s
    assert spend.day_retention_s < ttl_month <= spend.month_retention_s


async def test_a_raise_for_today_lets_it_go_and_lifts_the_pause(redis: Redis) -> None:
    spend = settings(total={"daily_usd": 0.015})
    assert (await reserve(redis, spend))[0] == b"0"
    assert (await reserve(redis, spend))[0] == b"budget"
    await raise_cap(redis, spend, scope="*", period="day", usd_cap=0.03, actor="t", now=NOW)
    assert (await reserve(redis, spend))[0] == b"0"
    assert await redis.exists(keys.account_paused("a")) == 0
    assert await redis.hget(keys.spend_rollup(P.day), "a|*|held") is None
    # The raise is for that day only (a field of the day's rollup): the next day is capped by
    # the settings again.
    assert await redis.hget(keys.spend_rollup(P.day), "*|*|cap") == b"30000"
    assert 0 < await redis.ttl(keys.spend_rollup(P.day)) <= spend.day_retention_s


async def test_a_raised_cap_below_the_configured_one_does_not_lower_it(redis: Redis) -> None:
    spend = settings(accounts={"a": {"monthly_usd": 1.0}})
    await redis.hset(keys.spend_rollup(P.month), "a|*|cap", "1")
    reply = await reserve(redis, spend)
    assert reply[0] == b"0"
    assert BudgetView.parse(reply[2:]).caps[1] == 1_000_000


async def test_a_zero_cap_holds_everything(redis: Redis) -> None:
    spend = settings(total={"monthly_usd": 0})
    assert (await reserve(redis, spend))[0] == b"budget"
    # Nothing charged: the month's rollup holds the hold's note alone, with a lifetime.
    assert await rollup(redis, P.month) == {}
    assert await redis.hgetall(keys.spend_rollup(P.month)) == {b"a|*|held": b"1"}
    assert 0 < await redis.ttl(keys.spend_rollup(P.month)) <= spend.month_retention_s


async def test_another_pause_is_kept_and_a_pause_key_of_another_type_left_alone(
    redis: Redis,
) -> None:
    spend = settings(total={"daily_usd": 0})
    await redis.hset(keys.account_paused("a"), mapping={"reason": "credentials", "until": ""})
    assert (await reserve(redis, spend))[0] == b"budget"
    assert await redis.hget(keys.account_paused("a"), "reason") == b"credentials"
    await redis.delete(keys.account_paused("a"))
    await redis.set(keys.account_paused("a"), "junk")
    assert (await reserve(redis, spend))[0] == b"budget"
    assert await redis.get(keys.account_paused("a")) == b"junk"


async def test_release_refunds_a_charge_that_never_reached_x(redis: Redis) -> None:
    spend = settings()
    assert (await reserve(redis, spend))[0] == b"0"
    release = scripts.register(redis, "budget_release")
    await release(
        keys=[keys.rate_limit_budgets("a", "tweets.create"), *spend_keys("a", P)[:2]],
        args=["a", "post", POST, spend.day_retention_s, spend.month_retention_s],
    )
    assert await rollup(redis, P.day) == {"a|post": 0, "a|*": 0, "*|*": 0}
    assert await redis.hget(keys.rate_limit_budgets("a", "tweets.create"), "pending") == b"0"


async def test_recording_a_billed_call_ignores_caps_and_keeps_a_budget_hold(redis: Redis) -> None:
    spend = settings(total={"daily_usd": 0.001})
    await redis.hset(keys.account_paused("a"), mapping={"reason": "budget", "until": "9"})
    await redis.hset(keys.spend_rollup(P.day), "a|*|held", "1")
    record = scripts.register(redis, "spend_record")
    reply = await record(keys=spend_keys("a", P), args=spend_args(spend, "a", "timeline_read",
                                                                  5_000, P))  # fmt: skip
    assert BudgetView.parse(reply).spent[2] == 5_000
    assert (await rollup(redis, P.day))["a|timeline_read"] == 5_000
    assert await redis.hget(keys.account_paused("a"), "reason") == b"budget"


async def test_hostile_counts_and_keys_are_set_aside_never_raised(redis: Redis) -> None:
    spend = settings(accounts={"a": {"daily_usd": 1.0}})
    await redis.hset(
        keys.spend_rollup(P.day), mapping={"a|post": "x", "a|*": "1e3", "*|*": "9" * 20}
    )
    await redis.rpush(keys.spend_rollup(P.month), "a list")
    await redis.set(keys.spend_caps(P.day), "a string")
    await redis.hset(keys.spend_caps(P.month), "*", "1.5")
    reply = await reserve(redis, spend)
    assert reply[0] == b"0"
    view = BudgetView.parse(reply[2:])
    # a|*, *|*, the month key, the day caps key, a|post (the month's old caps are not read
    # while its rollup cannot be: nothing could be folded into it)
    assert view.junk == 5
    day = await rollup(redis, P.day)
    # Totals that are numbers but no counts are read as such (no cap on the total here).
    assert day["a|post"] == POST
    assert day["a|*"] == 1_000 + POST
    assert day["*|*"] >= 10**20
    # No month cap: the month rollup of another type holds nothing, and is left as it is.
    assert await redis.lrange(keys.spend_rollup(P.month), 0, -1) == [b"a list"]
    assert await redis.exists(keys.spend_rollup(P.month) + ":junk") == 0
    assert await redis.get(keys.spend_caps(P.day)) == b"a string"


@pytest.mark.parametrize("period", ["day", "month"])
async def test_a_rollup_of_another_type_holds_its_capped_budgets_until_fixed(
    redis: Redis, period: str
) -> None:
    """A whole period rollup of the wrong type (written by hand) is no fresh start from 0: it
    was set aside before and the period's spend counted again. It holds every capped budget
    it counts in, is never written, and the send goes once an operator fixed it."""
    name = P.day if period == "day" else P.month
    cap = {"daily_usd": 1.0} if period == "day" else {"monthly_usd": 1.0}
    spend = settings(accounts={"a": cap})
    await redis.set(keys.spend_rollup(name), "spent 0.99 USD already")
    held = await reserve(redis, spend)
    until = P.day_end if period == "day" else P.month_end
    assert held[:2] == [b"budget", repr(until).encode()]
    view = BudgetView.parse(held[2:])
    assert view.blocked == f"account|{period}"
    assert view.junk == 1
    index = 0 if period == "day" else 1
    assert view.spent[index] == view.caps[index] == 1_000_000  # shown as spent up to its cap
    assert await redis.get(keys.spend_rollup(name)) == b"spent 0.99 USD already"
    assert await redis.exists(keys.spend_rollup(name) + ":junk") == 0
    assert await redis.hget(keys.account_paused("a"), "budget") == f"account|{period}".encode()
    # A refund to it (a reservation given back) leaves it too.
    release = scripts.register(redis, "budget_release")
    await release(
        keys=[budget_keys("a", "tweets.create")[0], *spend_keys("a", P)[:2]],
        args=["a", "post", POST, spend.day_retention_s, spend.month_retention_s],
    )
    assert await redis.get(keys.spend_rollup(name)) == b"spent 0.99 USD already"
    # The operator writes the true figures back as a hash: the account may spend again.
    await redis.delete(keys.spend_rollup(name))
    await redis.hset(keys.spend_rollup(name), mapping={"a|post": 990_000, "a|*": 990_000})
    assert (await reserve(redis, spend, micros=POST))[0] == b"budget"  # 0.99 + 0.015 > 1
    await redis.hset(keys.spend_rollup(name), mapping={"a|*": 900_000})
    assert (await reserve(redis, spend, micros=POST))[0] == b"0"


@pytest.mark.parametrize("junk", ["x", "-1", "nan", "inf", "-inf", "1e400", "0x10", ""])
async def test_a_total_that_cannot_be_read_holds_its_budget_and_is_never_written_over(
    redis: Redis, junk: str
) -> None:
    spend = settings(accounts={"a": {"daily_usd": 1.0}})
    await redis.hset(keys.spend_rollup(P.day), "a|*", junk)
    held = await reserve(redis, spend)
    assert held[:2] == [b"budget", repr(P.day_end).encode()]
    view = BudgetView.parse(held[2:])
    assert view.blocked == "account|day"
    assert view.junk == 1
    assert view.spent[0] == view.caps[0] == 1_000_000  # shown as spent up to its cap
    assert await redis.hget(keys.account_paused("a"), "budget") == b"account|day"
    # A billed call is recorded everywhere but over the total that cannot be read.
    record = scripts.register(redis, "spend_record")
    await record(keys=spend_keys("a", P), args=spend_args(spend, "a", "timeline_read", 5, P))
    assert await redis.hget(keys.spend_rollup(P.day), "a|*") == junk.encode()
    assert await redis.hmget(keys.spend_rollup(P.day), ["a|timeline_read", "*|*"]) == [b"5"] * 2
    assert (await reserve(redis, spend))[0] == b"budget"


async def test_a_total_that_cannot_be_read_holds_every_account_under_a_total_cap(
    redis: Redis,
) -> None:
    await redis.hset(keys.spend_rollup(P.month), "*|*", "nan")
    held = await reserve(redis, settings(total={"monthly_usd": 100.0}))
    assert held[:2] == [b"budget", repr(P.month_end).encode()]
    assert BudgetView.parse(held[2:]).blocked == "total|month"
    # Without a cap on it, the total holds nothing (and is still not written over).
    assert (await reserve(redis, settings()))[0] == b"0"
    assert await redis.hget(keys.spend_rollup(P.month), "*|*") == b"nan"


async def test_a_refund_keeps_a_total_it_can_read_and_never_ends_below_0(redis: Redis) -> None:
    await redis.hset(
        keys.spend_rollup(P.day), mapping={"a|post": "10", "a|*": "440000.5", "*|*": "junk"}
    )
    release = scripts.register(redis, "budget_release")
    await release(
        keys=[keys.rate_limit_budgets("a", "tweets.create"), *spend_keys("a", P)[:2]],
        args=["a", "post", POST, 86_400, 86_400 * 40],
    )
    assert await redis.hmget(keys.spend_rollup(P.day), ["a|post", "a|*", "*|*"]) == [
        b"0", str(440_001 - POST).encode(), b"junk"
    ]  # fmt: skip
