"""The Accounts page compares the in-flight count's lapse (`pending.until`, stamped on Redis's
clock by the writer's scripts) with Redis's clock, whatever this host's clock says."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.moderation.harness import Harness
from twitstack.moderation import accounts
from twitstack.moderation.accounts import account_statuses
from twitstack.moderation.roles import Role
from twitstack.writes import keys

pytestmark = pytest.mark.anyio
HOUR_MS = 3_600_000


async def _redis_ms(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return seconds * 1000 + micros / 1000


async def _in_flight(redis: Redis, endpoint: str, until_ms: float) -> None:
    await redis.hset(
        keys.rate_limit_budgets("default", endpoint),
        mapping={"pending": 2, "pending.until": repr(until_ms), "layout": 2},
    )


@pytest.mark.parametrize("skew_ms", [HOUR_MS, -HOUR_MS], ids=["host_ahead", "host_behind"])
async def test_in_flight_lapses_on_redis_clock_not_the_hosts(
    mod: Harness, monkeypatch: pytest.MonkeyPatch, skew_ms: int
) -> None:
    """A count lapsing a minute from now (Redis's clock) is shown; one that lapsed a minute
    ago is not; with this host's clock an hour ahead or behind Redis's."""
    redis_now = await _redis_ms(mod.redis)
    await _in_flight(mod.redis, "live", redis_now + 60_000)
    await _in_flight(mod.redis, "lapsed", redis_now - 60_000)
    real = accounts.time.time
    monkeypatch.setattr(accounts.time, "time", lambda: real() + skew_ms / 1000)
    [status] = await account_statuses(mod.redis, ["default"])
    assert status.in_flight == {"live": 2}
    await mod.add_user("vi", Role.VIEWER)
    async with mod.client() as client:
        await mod.login(client, "vi")
        page = await client.get("/accounts")
    assert page.status_code == 200
    assert "<code>live</code> 2" in page.text
    assert "<code>lapsed</code>" not in page.text


@pytest.fixture
async def no_time(mod: Harness) -> AsyncIterator[Redis]:
    """A client whose user may read the writer's keys but not run TIME (an older ACL)."""
    await mod.redis.acl_setuser(
        "notime", enabled=True, passwords=["+notime"], commands=["+@all", "-time"], keys=["*"]
    )
    kwargs = mod.redis.connection_pool.connection_kwargs
    client = Redis(host=kwargs["host"], port=kwargs["port"], username="notime", password="notime")
    try:
        yield client
    finally:
        await client.aclose()
        await mod.redis.acl_deluser("notime")


async def test_a_user_refused_time_falls_back_to_the_host_clock(no_time: Redis) -> None:
    """The page must still render with an ACL file from before it read TIME."""
    now_ms = await accounts.redis_now_ms(no_time)
    assert abs(now_ms - accounts.time.time() * 1000) < HOUR_MS
    await _in_flight(no_time, "live", now_ms + 60_000)
    [status] = await account_statuses(no_time, ["default"])
    assert status.in_flight == {"live": 2}
