"""Shared rate-limit budgets and account pauses in a real Redis."""

from __future__ import annotations

import anyio
import pytest
from redis.asyncio import Redis

from twitstack.writer.ratelimit import AccountPauses, RateLimitBudgets


class FakeClock:
    """A settable clock shared by the code under test."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def window(limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {
        "x-rate-limit-limit": str(limit),
        "x-rate-limit-remaining": str(remaining),
        "x-rate-limit-reset": str(reset),
    }


@pytest.mark.anyio
async def test_unknown_bucket_is_granted_then_learned(redis: Redis) -> None:
    """With no knowledge a send is allowed; X's headers then bound the window."""
    clock = FakeClock()
    budgets = RateLimitBudgets(redis, clock=clock)
    assert await budgets.reserve("a", "tweets.create") is None
    assert await budgets.observe("a", "tweets.create", window(100, 1, 1900)) == {"window": 1}
    assert await budgets.reserve("a", "tweets.create") is None
    assert await budgets.reserve("a", "tweets.create") == 1900
    clock.now = 1900.5
    assert await budgets.reserve("a", "tweets.create") is None


@pytest.mark.anyio
async def test_exhausted_account_does_not_block_others(redis: Redis) -> None:
    """A limited (account, endpoint) leaves other accounts and endpoints alone."""
    budgets = RateLimitBudgets(redis, clock=FakeClock())
    await budgets.observe("a", "tweets.create", window(100, 0, 1900))
    assert await budgets.reserve("a", "tweets.create") == 1900
    assert await budgets.reserve("b", "tweets.create") is None
    assert await budgets.reserve("a", "dm.create") is None


@pytest.mark.anyio
async def test_observe_keeps_the_lower_count_within_a_window(redis: Redis) -> None:
    """Answers arrive out of order; within a window X's lowest count wins."""
    budgets = RateLimitBudgets(redis, clock=FakeClock())
    await budgets.observe("a", "e", window(100, 10, 1900))
    for _ in range(4):
        assert await budgets.reserve("a", "e") is None
    assert await budgets.observe("a", "e", window(100, 9, 1900)) == {"window": 9}
    # An answer that arrives late (a higher count, same window) does not raise it again.
    assert await budgets.observe("a", "e", window(100, 10, 1900)) == {"window": 9}
    # An answer from an older window is stale and ignored.
    assert await budgets.observe("a", "e", window(100, 99, 1000)) == {"window": 9}
    # A new window replaces the old one.
    assert await budgets.observe("a", "e", window(100, 99, 2800)) == {"window": 99}


@pytest.mark.anyio
async def test_daily_bucket_blocks_until_its_reset(redis: Redis) -> None:
    """An exhausted 24-hour bucket blocks even when the window has room."""
    budgets = RateLimitBudgets(redis, clock=FakeClock())
    headers = {
        **window(15, 10, 1900),
        "x-user-limit-24hour-limit": "1440",
        "x-user-limit-24hour-remaining": "0",
        "x-user-limit-24hour-reset": "80000",
    }
    assert await budgets.observe("a", "dm.create", headers) == {"window": 10, "24h": 0}
    assert await budgets.reserve("a", "dm.create") == 80000


@pytest.mark.anyio
async def test_concurrent_replicas_never_overspend(redis: Redis, redis_url: str) -> None:
    """Two replicas reserving concurrently grant exactly what is left."""
    other = Redis.from_url(redis_url)
    clock = FakeClock()
    replicas = [RateLimitBudgets(redis, clock=clock), RateLimitBudgets(other, clock=clock)]
    await replicas[0].observe("a", "e", window(100, 10, 1900))
    granted: list[bool] = []

    async def one(i: int) -> None:
        granted.append(await replicas[i % 2].reserve("a", "e") is None)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
    await other.aclose()
    assert granted.count(True) == 10


@pytest.mark.anyio
async def test_exhaust_until_blocks_without_headers(redis: Redis) -> None:
    """A 429 without headers still blocks the bucket until the computed time."""
    budgets = RateLimitBudgets(redis, clock=FakeClock())
    await budgets.exhaust_until("a", "e", 1060.0)
    assert await budgets.reserve("a", "e") == 1060.0


@pytest.mark.anyio
async def test_resets_never_move_back_within_a_window(redis: Redis) -> None:
    """An earlier reset (a stale 429, a guessed block) never reopens an exhausted window."""
    budgets = RateLimitBudgets(redis, clock=FakeClock())
    await budgets.observe("a", "e", window(10, 0, 1900), reserved=False)
    await budgets.observe("a", "e", window(10, 0, 1100), reserved=False)  # a stale answer
    await budgets.exhaust_until("a", "e", 1060.0)  # a 429 without usable headers
    budget = await budgets.budget("a", "e")
    assert budget is not None
    assert (budget.remaining, budget.reset) == (0, 1900.0)
    assert await budgets.reserve("a", "e") == 1900.0


@pytest.mark.anyio
async def test_pause_until_expiry_or_resume(redis: Redis) -> None:
    """A timed pause lapses on its own; an open-ended one needs resume()."""
    clock = FakeClock()
    pauses = AccountPauses(redis, clock=clock)
    await pauses.pause("a", "usage_capped")
    await pauses.pause("b", "daily", until=1100.0)
    paused = await pauses.paused("a")
    assert paused is not None
    assert (paused.reason, paused.until) == ("usage_capped", None)
    assert await pauses.paused("b") is not None
    clock.now = 1100.0
    assert await pauses.paused("b") is None
    assert await pauses.resume("a")
    assert await pauses.paused("a") is None


@pytest.mark.anyio
async def test_requests_in_flight_are_counted_against_the_window(redis: Redis) -> None:
    """Sends made before X's first answer still count: exactly the limit is granted."""
    budgets = RateLimitBudgets(redis, clock=FakeClock())
    for _ in range(4):  # four workers send while the window is unknown
        assert await budgets.reserve("a", "e") is None
    await budgets.observe("a", "e", window(100, 99, 1900))  # X has seen only the first
    granted = 0
    for _ in range(200):
        if await budgets.reserve("a", "e") is not None:
            break
        granted += 1
    assert granted == 96


@pytest.mark.anyio
async def test_release_returns_an_unused_reservation(redis: Redis) -> None:
    """A request that got no headers back frees its room for the next one."""
    budgets = RateLimitBudgets(redis, clock=FakeClock())
    await budgets.observe("a", "e", window(100, 1, 1900), reserved=False)
    assert await budgets.reserve("a", "e") is None
    assert await budgets.reserve("a", "e") == 1900
    await budgets.release("a", "e")
    assert await budgets.reserve("a", "e") is None
