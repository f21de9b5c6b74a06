"""Adversary: one rate window whose reset no X window can have must not hold an account for
as long as its key lives (for ever without a TTL).

budget_core.lua replaces a stored reset further past an answer's than X's longest window.
Nor may a replica's clock skew void the others' in-flight reservations: their lapse runs on
Redis's clock.
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writes import keys

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000.0
ENDPOINT = "tweets.create"
BUDGET = keys.rate_limit_budgets("default", ENDPOINT)


async def test_x_answers_replace_a_window_reset_past_any_window(redis: Redis) -> None:
    budgets = RateLimitBudgets(redis, clock=lambda: NOW)
    await redis.hset(
        BUDGET, mapping={"window.limit": 1, "window.remaining": 0, "window.reset": 10**13}
    )
    assert await budgets.reserve("default", ENDPOINT) == 10**13
    headers = {
        "x-rate-limit-limit": "100",
        "x-rate-limit-remaining": "99",
        "x-rate-limit-reset": str(int(NOW) + 900),
    }
    await budgets.observe("default", ENDPOINT, headers, reserved=False)
    assert await budgets.reserve("default", ENDPOINT) is None


@pytest.mark.parametrize(
    ("ahead", "replaced"),
    [(86_400 + 1_800, False), (90_000, False), (90_001, True)],
)
async def test_a_stale_answer_is_ignored_up_to_the_longest_window_and_its_slack(
    redis: Redis, ahead: int, replaced: bool
) -> None:
    """An answer from an older 24-hour window, recorded late, is still stale: only a stored
    reset further ahead than 24 h and an hour past the answer's is replaced."""
    budgets = RateLimitBudgets(redis, clock=lambda: NOW)
    stale = int(NOW) + 60
    daily = keys.rate_limit_budgets("default", ENDPOINT)
    await redis.hset(daily, mapping={"24h.limit": 1, "24h.remaining": 0,
                                     "24h.reset": stale + ahead})  # fmt: skip
    headers = {
        "x-user-limit-24hour-limit": "100",
        "x-user-limit-24hour-remaining": "99",
        "x-user-limit-24hour-reset": str(stale),
    }
    await budgets.observe("default", ENDPOINT, headers, reserved=False)
    expected = None if replaced else float(stale + ahead)
    assert await budgets.reserve("default", ENDPOINT) == expected


async def test_a_replica_with_its_clock_ahead_still_counts_the_others_in_flight(
    redis: Redis,
) -> None:
    behind = RateLimitBudgets(redis, clock=lambda: NOW)
    ahead = RateLimitBudgets(redis, clock=lambda: NOW + 300)
    await redis.hset(
        BUDGET, mapping={"window.limit": 1, "window.remaining": 1, "window.reset": int(NOW) + 900}
    )
    assert await behind.reserve("default", ENDPOINT) is None
    # X said one request is left, and it is in flight: no room for a second, on any replica.
    assert await ahead.reserve("default", ENDPOINT) == int(NOW) + 900
    assert await redis.hget(BUDGET, "pending") == b"1"


async def test_a_replica_with_its_clock_behind_has_its_in_flight_counted_by_the_others(
    redis: Redis,
) -> None:
    """Its reservation must not be stamped with its own clock: NOW - 300 + 120 s would already
    be past for the others, which would read it as lapsed."""
    behind = RateLimitBudgets(redis, clock=lambda: NOW - 300)
    on_time = RateLimitBudgets(redis, clock=lambda: NOW)
    await redis.hset(
        BUDGET, mapping={"window.limit": 1, "window.remaining": 1, "window.reset": int(NOW) + 900}
    )
    assert await behind.reserve("default", ENDPOINT) is None
    assert await on_time.reserve("default", ENDPOINT) == int(NOW) + 900
    assert await redis.hget(BUDGET, "pending") == b"1"
