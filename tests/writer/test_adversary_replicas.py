"""Adversary: two real writer processes take copies of the same signed messages at once.

Every copy is pushed together (a producer retrying, or someone replaying the queue): each
request must reach X exactly once, whichever replica takes which copy, and none is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, tweet, wait_until
from tests.writer.test_crash import Writers, write_config
from twitstack.core.redis import create_redis
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writes import keys, ledger_index
from twitstack.writes.models import ModerationStatus
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
pytestmark = [pytest.mark.slow, pytest.mark.anyio, pytest.mark.timeout(120)]
COPIES, REQUESTS = 6, 8


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()  # the wall clock, as the writer processes use


async def test_copies_of_one_signed_message_taken_by_two_replicas_post_once(
    make_redis_server: Callable[..., RedisServer], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    server = make_redis_server()
    redis: Redis = create_redis(server.url)
    configs = {
        name: write_config(tmp_path, server.url, sandbox.base_url, name) for name in ("a", "b")
    }
    writers = Writers(tmp_path, configs)
    requests = [approved(tweet(f"copied {i}")) for i in range(REQUESTS)]
    try:
        for name in configs:
            writers.start(name)
        # Interleaved, so both replicas hold copies of the same request at the same time.
        await redis.rpush(
            keys.WRITE_QUEUE,
            *[encode_write_request(r) for _ in range(COPIES) for r in requests],
        )

        async def settled() -> bool:
            counts = await ledger_index.counts(redis)
            return counts[S.EXECUTED] == REQUESTS and not await redis.llen(keys.WRITE_QUEUE)

        await wait_until(settled, timeout_s=60, poll_s=0.1)
        assert all(writers.alive(name) for name in configs)
    finally:
        writers.stop_all()
    assert await redis.llen(keys.DEAD_LETTER) == 0
    await redis.aclose()
    posted = sorted(post.text for post in sandbox.state.content.posts.values())
    assert posted == sorted(r.payload["text"] for r in requests)
