"""`twitstack run --only writer` across a Redis kill -9: same process, back to work quickly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, tweet, wait_until
from tests.writer.test_crash import Writers, write_config
from twitstack.core.redis import create_redis
from twitstack.sandbox.xapi.config import Endpoint, XApiSandboxConfig
from twitstack.writes import keys, ledger_index
from twitstack.writes.models import ModerationStatus
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
RESUME_BOUND_S = 10.0  # issue 3: "resumes within 10 s"


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """No per-user window: this test is about Redis, not X's limits."""
    return XApiSandboxConfig(rate_limits={Endpoint.CREATE_TWEET: ()})


async def _push(redis: Redis, texts: list[str]) -> None:
    requests = [approved(tweet(text)) for text in texts]
    await redis.rpush(keys.WRITE_QUEUE, *[encode_write_request(r) for r in requests])


async def _executed(redis: Redis, count: int) -> None:
    async def done() -> bool:
        return (await ledger_index.counts(redis))[S.EXECUTED] >= count

    await wait_until(done, timeout_s=30, poll_s=0.1)


@pytest.mark.slow
@pytest.mark.anyio
async def test_daemon_keeps_its_pid_and_resumes_after_redis_restart(
    make_redis_server: Callable[..., RedisServer], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """Redis killed mid-run and restarted (AOF): the same process executes new work in < 10 s."""
    server = make_redis_server(appendonly=True)
    writers = Writers(tmp_path, {"w1": write_config(tmp_path, server.url, sandbox.base_url, "w1")})
    writers.start("w1")
    pid = writers.processes["w1"].pid
    redis = create_redis(server.url)
    try:
        await _push(redis, [f"before {i}" for i in range(30)])
        await _executed(redis, 30)
        await anyio.to_thread.run_sync(lambda: server.stop(kill=True))
        await anyio.sleep(2.0)  # the writer meets a dead Redis for a while
        await anyio.to_thread.run_sync(server.start)
        await _push(redis, [f"after {i}" for i in range(30)])
        with anyio.fail_after(RESUME_BOUND_S):
            await _executed(redis, 60)
        assert writers.alive("w1")
        assert writers.processes["w1"].pid == pid
    finally:
        writers.stop_all()
        await redis.aclose()
    counts = sandbox.state.content.post_text_counts()
    assert len(counts) == 60
    assert max(counts.values()) == 1
