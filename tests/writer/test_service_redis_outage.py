"""Redis killed (kill -9) and restarted under a running writer: no crash, no loss, no duplicate."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from tests.conftest import RedisServer
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.core.redis import create_redis
from twitstack.sandbox.xapi.config import Endpoint, XApiSandboxConfig
from twitstack.writes.models import ModerationStatus

S = ModerationStatus


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """No per-user window: re-sends after the outage must not wait 15 minutes."""
    return XApiSandboxConfig(rate_limits={Endpoint.CREATE_TWEET: ()})


@pytest.mark.slow
@pytest.mark.anyio
async def test_writer_survives_redis_restart(
    make_settings: Callable[..., Settings],
    make_redis_server: Callable[..., RedisServer],
    sandbox: RunningSandbox,
) -> None:
    """Every request Redis acknowledged is posted exactly once across a Redis kill -9."""
    server = make_redis_server(appendonly=True)
    redis = create_redis(server.url)
    settings = writer_settings(
        make_settings, sandbox.base_url, stale_sending_s=1.0, redis_backoff_max_s=0.5
    )
    first = [approved(tweet(f"before the outage {i}")) for i in range(60)]
    second = [approved(tweet(f"after the outage {i}")) for i in range(40)]
    try:
        async with running_writer(settings, redis, sandbox) as writer:
            await writer.push(*first)
            await wait_until(lambda: _posted_at_least(sandbox, 10))
            await anyio.to_thread.run_sync(lambda: server.stop(kill=True))
            await anyio.sleep(1.0)
            await anyio.to_thread.run_sync(server.start)
            await writer.push(*second)
            await writer.wait_states([r.id for r in first + second], {S.EXECUTED}, timeout_s=30)
            assert writer.metric("writer_redis_errors_total") >= 1
    finally:
        await redis.aclose()
    counts = sandbox.state.content.post_text_counts()
    assert len(counts) == 100
    assert max(counts.values()) == 1


async def _posted_at_least(sandbox: RunningSandbox, count: int) -> bool:
    return len(sandbox.state.content.posts) >= count
