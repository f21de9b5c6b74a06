"""A read Redis refuses for the user's ACL (NOPERM) is raised, never read as "no budget" or
"no pause"; a key of the wrong type (junk written by hand) still reads as none."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError

from twitstack.core.redis_access import is_permission_error
from twitstack.core.sections.spend import SpendSettings
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writer.spend_ledger import SpendLedger
from twitstack.writes import keys
from twitstack.writes.spend import cap_audit, raised_cap

pytestmark = pytest.mark.anyio
ENDPOINT = "tweets.create"
USER = "lacking"


@pytest.fixture
async def lacking(redis: Redis) -> AsyncIterator[Redis]:
    """A client whose user may touch the ledger and the spend rollups, but neither the
    rate-limit budgets nor the pauses (an ACL file older than those keys)."""
    await redis.acl_setuser(
        USER, enabled=True, passwords=[f"+{USER}"], commands=["+@all"],
        keys=["writes:*", f"{keys.WRITER_PREFIX}:spend:*"],
    )  # fmt: skip
    kwargs = redis.connection_pool.connection_kwargs
    client = Redis(host=kwargs["host"], port=kwargs["port"], username=USER, password=USER)
    try:
        yield client
    finally:
        await client.aclose()
        await redis.acl_deluser(USER)


async def test_a_budget_the_acl_refuses_is_raised_not_read_as_none(lacking: Redis) -> None:
    """`writer status` showed no budget line at all: now the refusal reaches its caller."""
    with pytest.raises(NoPermissionError):
        await RateLimitBudgets(lacking, clock=time.time).budget("brand", ENDPOINT)


async def test_a_budget_key_of_the_wrong_type_still_reads_as_none(redis: Redis) -> None:
    await redis.set(keys.rate_limit_budgets("brand", ENDPOINT), "junk")
    await redis.set(keys.rate_limit_budget("brand", ENDPOINT, "window"), "junk")
    assert await RateLimitBudgets(redis, clock=time.time).budget("brand", ENDPOINT) is None


def _ledger(redis: Redis) -> SpendLedger:
    settings = SpendSettings.model_validate({"accounts": {"brand": {"daily_usd": 1.0}}})
    return SpendLedger(redis, settings, WriterMetrics(CollectorRegistry()), clock=time.time)


async def test_spend_gauges_raise_a_pause_the_acl_refuses(lacking: Redis) -> None:
    """The gauges' refresh read a refused pause as none and carried on, silently; raised, the
    writer's loop counts it (writer_redis_permission_errors_total) and logs what is lacking."""
    with pytest.raises(NoPermissionError) as raised:
        await _ledger(lacking).refresh(["brand"])
    assert is_permission_error(raised.value)


async def test_spend_gauges_pass_over_a_pause_of_the_wrong_type(redis: Redis) -> None:
    await redis.set(keys.account_paused("brand"), "junk")
    await _ledger(redis).refresh(["brand"])


async def test_a_raised_cap_the_acl_refuses_is_raised_not_read_as_none(redis: Redis) -> None:
    """A user without the spend rollups: the cap in force read "not raised" and carried on."""
    await redis.acl_setuser(
        "nospend", enabled=True, passwords=["+nospend"], commands=["+@all"], keys=["writes:*"]
    )
    kwargs = redis.connection_pool.connection_kwargs
    client = Redis(host=kwargs["host"], port=kwargs["port"], username="nospend", password="nospend")
    try:
        with pytest.raises(NoPermissionError):
            await raised_cap(client, "2026-12-05", "brand")
        with pytest.raises(NoPermissionError):
            await cap_audit(client)
    finally:
        await client.aclose()
        await redis.acl_deluser("nospend")
