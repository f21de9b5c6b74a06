"""The budget gauges the alerts read: recomputed from the shared ledger, so a new day, a raised
cap or another replica's spending shows without a send of this replica."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from twitstack.core.sections.spend import SpendSettings
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.ratelimit import budget_keys
from twitstack.writer.spend_ledger import SpendLedger
from twitstack.writes import keys, scripts
from twitstack.writes.spend import Periods, raise_cap

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def gauge(registry: CollectorRegistry, name: str, scope: str, period: str) -> float | None:
    return registry.get_sample_value(name, {"scope": scope, "period": period})


async def test_gauges_follow_the_ledger_across_a_day_and_a_raise(redis: Redis) -> None:
    spend = SpendSettings.model_validate(
        {"total": {"monthly_usd": 0.1}, "accounts": {"a": {"daily_usd": 0.03}}}
    )
    registry = CollectorRegistry()
    clock = Clock()
    ledger = SpendLedger(redis, spend, WriterMetrics(registry), clock=clock)
    for _ in range(2):  # another replica's posts look the same in the ledger
        await ledger.record("a", "post")
    await ledger.refresh(["a"])
    used, reached = "twitstack_x_spend_budget_used_ratio", "twitstack_x_spend_budget_reached"
    assert gauge(registry, used, "a", "day") == pytest.approx(1.0)
    assert gauge(registry, reached, "a", "day") == 1
    assert gauge(registry, used, "total", "month") == pytest.approx(0.3)
    assert gauge(registry, reached, "total", "month") == 0
    await raise_cap(redis, spend, scope="a", period="day", usd_cap=0.06, actor="t", now=NOW)
    await ledger.refresh(["a"])
    assert gauge(registry, used, "a", "day") == pytest.approx(0.5)
    assert gauge(registry, reached, "a", "day") == 0
    # A budget pause names the budget that holds the account: reached, whatever the sums say.
    await redis.hset(
        keys.account_paused("a"), mapping={"reason": "budget", "budget": "total|month"}
    )
    await ledger.refresh(["a"])
    assert gauge(registry, reached, "total", "month") == 1
    await redis.delete(keys.account_paused("a"))
    clock.now = Periods.at(NOW).day_end + 1  # the next day: the raise is gone, so is the spend
    await ledger.refresh(["a"])
    assert gauge(registry, used, "a", "day") == 0
    assert gauge(registry, reached, "a", "day") == 0
    assert gauge(registry, used, "total", "month") == pytest.approx(0.3)


async def test_a_budget_pause_without_its_note_is_noted_so_a_charge_ends_it(
    redis: Redis,
) -> None:
    """Upgrade: a budget pause set before holds were noted in the rollups (the reservation reads
    the pause only when noted) is noted by the refresh, in the blocking period's rollup, and
    the next granted send ends it as before."""
    spend = SpendSettings()
    clock = Clock()
    ledger = SpendLedger(redis, spend, WriterMetrics(CollectorRegistry()), clock=clock)
    periods = Periods.at(NOW)
    await redis.hset(keys.account_paused("a"), mapping={"reason": "budget", "until": "",
                                                        "budget": "account|month"})  # fmt: skip
    await ledger.refresh(["a", "b"])
    assert await redis.hget(keys.spend_rollup(periods.month), "a|*|held") == b"1"
    assert await redis.hget(keys.spend_rollup(periods.day), "a|*|held") is None
    assert await redis.hget(keys.spend_rollup(periods.month), "b|*|held") is None
    assert 0 < await redis.ttl(keys.spend_rollup(periods.month)) <= spend.month_retention_s
    s, p = ledger.keys_and_args(ledger.charge("a", "post"))
    reserve = scripts.register(redis, "budget_reserve")
    reply = await reserve(
        keys=[*budget_keys("a", "tweets.create"), *s], args=[repr(NOW), 120_000, *p]
    )
    assert reply[0] == b"0"
    assert await redis.exists(keys.account_paused("a")) == 0
    assert await redis.hget(keys.spend_rollup(periods.month), "a|*|held") is None
