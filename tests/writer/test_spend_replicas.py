"""Three real writer processes (`twitstack run --only writer`, 4 workers each) share one tight
cap: the spend ledger never passes it, and every charge is one request X received."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import SIGNER, wait_until
from tests.writer.test_crash import Writers, write_config
from twitstack.core.redis import create_redis
from twitstack.core.sections.spend import PriceTable
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writes import keys, ledger_index
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.spend import Periods
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
pytestmark = [pytest.mark.slow, pytest.mark.anyio, pytest.mark.timeout(120)]
REPLICAS, CONCURRENCY = 3, 4
CAP_USD = 0.45
PRICES = PriceTable()


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()  # the wall clock, as the writer processes use


def _request(text: str) -> WriteRequest:
    request = WriteRequest(action=WriteAction.TWEET, payload={"text": text})
    return SIGNER.approve(request, approver="alice")


async def test_replicas_never_spend_past_a_shared_cap(
    make_redis_server: Callable[..., RedisServer], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    server = make_redis_server()
    redis: Redis = create_redis(server.url)
    configs = {}
    for i in range(REPLICAS):
        path = write_config(tmp_path, server.url, sandbox.base_url, f"w{i}")
        path.write_text(path.read_text() + f"\n[spend.total]\ndaily_usd = {CAP_USD}\n")
        configs[f"w{i}"] = path
    writers = Writers(tmp_path, configs)
    plain = [_request(f"plain {i}") for i in range(24)]
    linked = [_request(f"linked {i} https://example.com/{i}") for i in range(4)]
    day = Periods.at(time.time()).day  # the writers' clock
    try:
        for name in configs:
            writers.start(name)
        for request in [*linked[:2], *plain, *linked[2:]]:
            await redis.rpush(keys.WRITE_QUEUE, encode_write_request(request))

        async def settled() -> bool:
            counts = await ledger_index.counts(redis)
            held = await redis.hget(keys.account_paused("default"), "reason") == b"budget"
            return (
                counts[S.EXECUTED] + counts[S.APPROVED] == 28
                and held
                and not (counts[S.SENDING] or await redis.llen(keys.WRITE_QUEUE))
            )

        await wait_until(settled, timeout_s=60, poll_s=0.1)
        assert all(writers.alive(name) for name in configs)
    finally:
        writers.stop_all()
    spent = {k.decode(): int(v) for k, v in (await redis.hgetall(keys.spend_rollup(day))).items()}
    await redis.aclose()
    posts = list(sandbox.state.content.posts.values())
    with_url = sum("https://" in post.text for post in posts)
    cap = round(CAP_USD * 1_000_000)
    bound = cap + REPLICAS * CONCURRENCY * PRICES.max_request_micros()
    expected = with_url * PRICES.micros("post_with_url") + (len(posts) - with_url) * (
        PRICES.micros("post")
    )
    assert spent["*|*"] == expected  # every charge is one request X received, and back
    assert spent["*|*"] <= bound
    # Checked and charged in one Lua step: not even one request past the cap.
    assert spent["*|*"] <= cap
    assert spent["*|*"] + PRICES.micros("post") > cap  # and the cap was really reached
    assert spent["default|post"] + spent.get("default|post_with_url", 0) == spent["*|*"]
