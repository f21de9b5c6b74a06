"""kill -9 mid-upload (and right after `sending`) with media requests: a real writer process is
killed, restarted, and every post exists exactly once with all its media."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.support.media_files import mp4, png
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import SIGNER, wait_until
from tests.writer.test_crash import Writers, write_config
from twitstack.core.redis import create_redis
from twitstack.sandbox.xapi.config import Endpoint, XApiSandboxConfig
from twitstack.writes import keys, ledger_index
from twitstack.writes.media import Attachment
from twitstack.writes.media_store import LocalMediaStore, ingest
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.wire import encode_write_request

S = ModerationStatus


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig(rate_limits={endpoint: () for endpoint in Endpoint})


async def media_requests(data_dir: Path) -> list[WriteRequest]:
    """Three posts: two images each, and one with a video; files in the writer's store."""
    store = LocalMediaStore(data_dir / "media")
    requests = []
    for number, files in enumerate([[png(seed=1), png(seed=2)], [png(seed=3), png(seed=4)],
                                    [mp4(300_000)]]):  # fmt: skip
        attachments = []
        for data in files:
            info = await ingest(store, [data], tmp_dir=data_dir / "tmp")
            attachments.append(Attachment(info.sha256, info.type, info.size, "alt").to_dict())
        payload = {"text": f"media post {number}", "media": {"attachments": attachments}}
        request = replace(WriteRequest(action=WriteAction.TWEET, payload={}), payload=payload)
        requests.append(SIGNER.approve(request, approver="alice"))
    return requests


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.timeout(200)
@pytest.mark.parametrize("crash_at", ["after_media_uploaded:3", "after_sending:1"])
async def test_kill_9_during_media_upload_posts_once(
    make_redis_server: Callable[..., RedisServer],
    sandbox: RunningSandbox,
    tmp_path: Path,
    crash_at: str,
) -> None:
    """Killed mid-upload or after `sending`: after a restart each post exists once, with all
    its media; uploads may repeat, posts may not."""
    server = make_redis_server(appendonly=True)
    redis: Redis = create_redis(server.url)
    writers = Writers(tmp_path, {"w1": write_config(tmp_path, server.url, sandbox.base_url, "w1")})
    requests = await media_requests(tmp_path / "w1")
    await redis.rpush(keys.WRITE_QUEUE, *[encode_write_request(r) for r in requests])
    try:
        writers.start("w1", crash_at)

        async def dead() -> bool:
            return not writers.alive("w1")

        await wait_until(dead, timeout_s=60, poll_s=0.05)
        assert writers.processes["w1"].returncode == -signal.SIGKILL
        posts_at_crash = len(sandbox.state.content.posts)
        writers.start("w1")

        async def settled() -> bool:
            counts = await ledger_index.counts(redis)
            return counts[S.EXECUTED] == len(requests)

        await wait_until(settled, timeout_s=120, poll_s=0.2)
        await anyio.sleep(1.0)  # nothing more may arrive after the ledger says done
        counts = await ledger_index.counts(redis)
    finally:
        writers.stop_all()
        await redis.aclose()
    content = sandbox.state.content
    texts = content.post_text_counts()
    assert {t: texts[t] for t in texts} == {f"media post {n}": 1 for n in range(3)}
    assert counts[S.SENDING] == counts[S.UNKNOWN] == counts[S.NEEDS_REVIEW] == 0
    for post in content.posts.values():
        wanted = 1 if post.text == "media post 2" else 2
        assert len(post.media_ids) == wanted
        assert all(content_media.state == "succeeded" for content_media in
                   (sandbox.state.media.items[m] for m in post.media_ids))  # fmt: skip
    assert sandbox.state.media.uploads >= 5
    assert posts_at_crash <= 3
