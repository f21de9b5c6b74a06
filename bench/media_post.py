"""A 4-image post end to end against the sandbox fake X: time per part (each upload, the post).

The real WriterService (in this process) takes a signed, approved tweet with four image
attachments from `write_queue`, uploads each file from the local media store to the fake X
(simple upload, then the alt-text metadata call), commits `sending` and posts. An httpx
transport around the writer's own client times every call to X, so each part is measured where
it happens: `upload n` is the POST /2/media/upload of image n plus its POST /2/media/metadata,
`post` is POST /2/tweets, `total` is approval pushed → `executed` in the ledger. Each round
uses fresh images (no cached media ids). The fake X runs in this process too; its handling is
part of each figure, as X's would be.

Usage: python bench/media_post.py [--rounds 5] [--size-kb 1024]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import anyio
import httpx
from common import bench_secret, redis_server, writer_settings
from redis.asyncio import Redis

from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.sandbox.xapi.server import open_xapi_sandbox
from twitstack.writer.service import WriterService
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.media import Attachment
from twitstack.writes.media_store import LocalMediaStore, ingest
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.signing import ApprovalSigner, generate_key_pair
from twitstack.writes.wire import encode_write_request

PNG_HEAD = b"\x89PNG\r\n\x1a\n"
WAIT_S = 60.0


class TimedTransport(httpx.AsyncHTTPTransport):
    """Records (method, path, seconds) of every call the writer makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, float]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await super().handle_async_request(request)
        await response.aread()
        self.calls.append((request.method, request.url.path, time.perf_counter() - started))
        return response


def image(size: int, seed: int) -> bytes:
    """`size` bytes that sniff as PNG (the fake checks magic bytes and size, not pixels)."""
    return PNG_HEAD + os.urandom(max(size - len(PNG_HEAD), 0)) + seed.to_bytes(4, "big")


def parts(calls: list[tuple[str, str, float]]) -> list[tuple[str, float]]:
    """Uploads (each with its metadata call) and the post, in order."""
    found: list[tuple[str, float]] = []
    for method, path, seconds in calls:
        if path == "/2/media/upload":
            found.append((f"upload {sum(1 for n, _ in found if n.startswith('upload')) + 1}",
                          seconds))  # fmt: skip
        elif path == "/2/media/metadata" and found:
            name, before = found[-1]
            found[-1] = (name, before + seconds)
        elif method == "POST" and path == "/2/tweets":
            found.append(("post", seconds))
    return found


async def one_round(
    redis: Redis, store: LocalMediaStore, signer: ApprovalSigner, number: int, size: int,
    tmp: Path, transport: TimedTransport,
) -> tuple[list[tuple[str, float]], float]:  # fmt: skip
    attachments = []
    for n in range(4):
        info = await ingest(store, [image(size, number * 10 + n)], tmp_dir=tmp)
        attachments.append(Attachment(info.sha256, info.type, info.size, f"image {n}").to_dict())
    payload = {"text": f"four images, round {number}", "media": {"attachments": attachments}}
    request = replace(WriteRequest(action=WriteAction.TWEET, payload={}), payload=payload)
    transport.calls.clear()
    started = time.perf_counter()
    await redis.rpush(keys.WRITE_QUEUE, encode_write_request(signer.approve(request, approver="b")))
    ledger = RequestLedger(redis)
    with anyio.fail_after(WAIT_S):
        for _ in range(int(WAIT_S / 0.002)):
            record = await ledger.get(request.id)
            if record is not None and record.state is ModerationStatus.EXECUTED:
                break
            if record is not None and record.state is ModerationStatus.NEEDS_REVIEW:
                raise SystemExit(f"round {number}: needs_review ({record.last_reason})")
            await anyio.sleep(0.002)
    return parts(transport.calls), time.perf_counter() - started


async def main(rounds: int, size: int) -> None:
    private, public = generate_key_pair()
    signer = ApprovalSigner(private)
    with redis_server() as redis_url, tempfile.TemporaryDirectory() as directory:
        data = Path(directory)
        async with open_xapi_sandbox(XApiSandboxConfig()) as fake:
            settings = writer_settings(redis_url, fake.base_url, public)
            settings = settings.model_copy(update={"data_dir": data})
            transport = TimedTransport()
            service = WriterService(settings, Redis.from_url(redis_url), secret=bench_secret,
                                    transport=transport)  # fmt: skip
            redis = Redis.from_url(redis_url)
            store = LocalMediaStore(data / "media")
            async with anyio.create_task_group() as tg:
                await tg.start(lambda task_status: service.run(task_status=task_status))
                # One unmeasured round: the first request after start-up warms caches.
                await one_round(redis, store, signer, 0, size, data / "tmp", transport)
                results = [
                    await one_round(redis, store, signer, n, size, data / "tmp", transport)
                    for n in range(1, rounds + 1)
                ]
                service.request_stop()
            await redis.aclose()
            posts = [p for p in fake.state.content.posts.values() if len(p.media_ids) == 4]
    if len(posts) != rounds + 1:
        raise SystemExit(f"expected {rounds + 1} posts with 4 images, found {len(posts)}")
    names = [name for name, _ in results[0][0]]
    print(f"4-image post, {size // 1024} KB per image, {rounds} rounds (median, ms):")
    for index, name in enumerate(names):
        values = [round_parts[index][1] * 1000 for round_parts, _ in results]
        print(f"  {name:<10} {statistics.median(values):8.1f}")
    totals = [total * 1000 for _, total in results]
    print(f"  {'total':<10} {statistics.median(totals):8.1f}  (queue push -> executed)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-kb", type=int, default=1024)
    options = parser.parse_args()
    anyio.run(main, options.rounds, options.size_kb * 1024)
