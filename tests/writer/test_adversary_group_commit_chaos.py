"""Adversary: kill -9 a writer process while its workers' begin and settle batches are in
flight, with a second replica running, then restart it: every request is posted exactly once
and ends executed (abandoned `sending` reconciled against X, never re-posted blindly)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import SIGNER, wait_until
from tests.writer.test_crash import Writers, write_config
from twitstack.core.redis import create_redis
from twitstack.sandbox.xapi.config import FaultKind, FaultSettings, XApiSandboxConfig
from twitstack.writes import keys, ledger_index
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
pytestmark = [pytest.mark.slow, pytest.mark.anyio, pytest.mark.timeout(120)]
REQUESTS = 40


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    # Slow answers keep many workers between their begin and settle batches at the kill.
    return XApiSandboxConfig(
        faults=FaultSettings(rates={FaultKind.LATENCY: 0.6}, latency_s=0.4, seed=7)
    )


def _request(text: str) -> WriteRequest:
    return SIGNER.approve(
        WriteRequest(action=WriteAction.TWEET, payload={"text": text}), approver="alice"
    )


async def test_kill_9_with_batches_in_flight_posts_each_request_once(
    make_redis_server: Callable[..., RedisServer], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    server = make_redis_server()
    redis: Redis = create_redis(server.url)
    configs = {}
    for name in ("w0", "w1"):
        path = write_config(tmp_path, server.url, sandbox.base_url, name)
        path.write_text(path.read_text().replace("concurrency = 4", "concurrency = 12"))
        configs[name] = path
    writers = Writers(tmp_path, configs)
    requests = [_request(f"chaos {n}") for n in range(REQUESTS)]
    try:
        for name in configs:
            writers.start(name)
        for request in requests:
            await redis.rpush(keys.WRITE_QUEUE, encode_write_request(request))

        async def some_done() -> bool:
            return (await ledger_index.counts(redis))[S.EXECUTED] >= 6

        await wait_until(some_done, timeout_s=30, poll_s=0.02)
        writers.kill("w0")
        await anyio.sleep(0.5)
        writers.start("w0")

        async def all_done() -> bool:
            counts = await ledger_index.counts(redis)
            return counts[S.EXECUTED] == REQUESTS and not await redis.llen(keys.WRITE_QUEUE)

        await wait_until(all_done, timeout_s=80, poll_s=0.2)
        assert all(writers.alive(name) for name in configs)
    finally:
        writers.stop_all()
        await redis.aclose()
    assert writers.kills == 1
    texts = Counter(post.text for post in sandbox.state.content.posts.values())
    assert texts == Counter(f"chaos {n}" for n in range(REQUESTS))  # each once, none lost
