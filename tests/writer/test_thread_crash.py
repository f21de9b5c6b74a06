"""Threads under kill -9 with real processes: a writer dies inside a middle part, another resumes.

Each case starts one `twitstack run --only writer` that SIGKILLs itself at a crash point of a
middle part (in flight, accepted by X but not recorded, recorded but the next not begun), then
a fresh writer finishes. Pass: every thread executed, each part posted exactly once, each part
a reply to the one before, the ledger's ids those posts.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import SIGNER, wait_until
from tests.writer.test_crash import Writers, _wait_dead, write_config
from tests.writer.test_threads import chain
from twitstack.core.redis import create_redis
from twitstack.sandbox.xapi.config import Endpoint, XApiSandboxConfig
from twitstack.writes import keys, ledger_index
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
THREADS = 3
PARTS = 5


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """No rate limits: this test is about crashes, not windows."""
    unlimited = (Endpoint.CREATE_TWEET, Endpoint.USER_TWEETS)
    return XApiSandboxConfig(rate_limits={endpoint: () for endpoint in unlimited})


def texts_of(case: str, thread: int) -> list[str]:
    return [f"{case} thread {thread} part {part}" for part in range(1, PARTS + 1)]


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "crash_at",
    # The n-th hit over all threads: with 3 threads interleaved, hit 7 lands on a middle part.
    ["after_part_sending:7", "after_x_accepted:7", "after_part_posted:6", "after_sending:2"],
)
async def test_kill_9_inside_a_thread_neither_doubles_nor_skips_a_part(
    make_redis_server: Callable[..., RedisServer],
    sandbox: RunningSandbox,
    tmp_path: Path,
    crash_at: str,
) -> None:
    """kill -9 at a middle part, restart: 0 duplicate parts, 0 missing, the chain intact."""
    server = make_redis_server(appendonly=True)
    redis: Redis = create_redis(server.url)
    case = crash_at.split(":")[0]
    requests = [
        SIGNER.approve(
            WriteRequest(
                action=WriteAction.THREAD,
                payload={"parts": [{"text": text} for text in texts_of(case, thread)]},
            ),
            approver="alice",
        )
        for thread in range(THREADS)
    ]
    writers = Writers(tmp_path, {"w1": write_config(tmp_path, server.url, sandbox.base_url, "w1")})
    await redis.rpush(keys.WRITE_QUEUE, *[encode_write_request(r) for r in requests])
    try:
        writers.start("w1", crash_at)
        await _wait_dead(writers, "w1")
        assert writers.processes["w1"].returncode == -signal.SIGKILL
        writers.start("w1")

        async def settled() -> bool:
            counts = await ledger_index.counts(redis)
            return counts[S.EXECUTED] + counts[S.FAILED] + counts[S.NEEDS_REVIEW] == THREADS

        await wait_until(settled, timeout_s=90, poll_s=0.3)
        records = await RequestLedger(redis).get_many([r.id for r in requests])
    finally:
        writers.stop_all()
        await redis.aclose()
    assert {record.state for record in records} == {S.EXECUTED}
    for thread, record in enumerate(records):
        posts = chain(sandbox, texts_of(case, thread))
        assert record.result is not None
        assert record.result["thread_ids"] == [post.id for post in posts]
    assert len(sandbox.state.content.posts) == THREADS * PARTS
