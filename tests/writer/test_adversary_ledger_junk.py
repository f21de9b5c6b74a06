"""Adversary: junk written by hand into one request's ledger hash must not wedge the writer.

Anyone with Redis access can write a request hash. The writer must quarantine what it cannot
move (the message kept in the dead letters), leave no reservation or spent approval behind,
and go on with the other requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus

S = ModerationStatus
pytestmark = pytest.mark.anyio
WINDOW = keys.rate_limit_budget("default", "tweets.create", "window")


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()


async def test_a_junk_attempt_held_by_the_rate_limit_does_not_stop_the_writer(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """No room in the window: the request is put back for later, whose reply names the junk
    attempt. The handler's last resort (dead letter, flag for review) must not raise out of
    the consumer: the writer keeps running and sends the next request."""
    settings = writer_settings(make_settings, sandbox.base_url)
    bad = approved(tweet("junk attempt, no room"))
    await RequestLedger(redis).record(bad, actor="moderation")
    await redis.hset(keys.request(bad.id), "attempt", "x")
    reset = int(time.time()) + 3600
    await redis.hset(WINDOW, mapping={"limit": 1, "remaining": 0, "reset": reset})
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(bad)

        async def dead_lettered() -> bool:
            return await redis.llen(keys.DEAD_LETTER) == 1

        await wait_until(dead_lettered, timeout_s=8)
        await redis.delete(WINDOW)
        good = approved(tweet("after the junk"))
        await writer.push(good)
        await writer.wait_states([good.id], {S.EXECUTED}, timeout_s=8)
        assert await redis.hget(keys.request(bad.id), "state") == b"needs_review"
    assert [post.text for post in sandbox.state.content.posts.values()] == ["after the junk"]
