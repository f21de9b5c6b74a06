"""A thread of N parts end to end: approved message → every part posted, time per part.

Usage: python bench/thread_post.py [--parts 10] [--rounds 3]

The fake X API runs in a child process; the writer (`WriterService`, in this process) takes
one signed, approved `thread` message from `write_queue` and posts it. Each part's time is
the gap between the fake's `created_at` of that part and of the one before (the first part:
from the push). Beside it, the reference measured in the same run: the same N posts sent
straight to the fake by one httpx client, each a reply to the one before (X's round trips and
nothing else). The difference is what the effectively-once protocol costs per part: the
`sending` commit, the in-flight mark and the recorded id in Redis before the next part.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from common import bench_secret, fake_x, redis_server, reset_phase, writer_settings
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from twitstack.core.config import Settings
from twitstack.core.logging import configure_logging
from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN
from twitstack.writer.service import WriterService
from twitstack.writes import keys
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.signing import ApprovalSigner, generate_key_pair
from twitstack.writes.wire import encode_write_request

RUN_TIMEOUT_S = 120.0


def posts_by_time(base_url: str) -> list[dict[str, object]]:
    posts = httpx.get(base_url + "/_sandbox/posts", timeout=10).json()["posts"]
    return sorted(posts, key=lambda p: float(p["created_at"]))


def gaps(start: float, posts: list[dict[str, object]]) -> list[float]:
    """Seconds from `start` to the first post, then between consecutive posts."""
    stamps = [start, *(float(str(p["created_at"])) for p in posts)]
    return [later - earlier for earlier, later in itertools.pairwise(stamps)]


def check_chain(posts: list[dict[str, object]], parts: int) -> None:
    """Exactly `parts` posts, each a reply to the one before: else the figures mean nothing."""
    if len(posts) != parts:
        raise SystemExit(f"expected {parts} posts at the fake, found {len(posts)}")
    for before, after in itertools.pairwise(posts):
        if after["reply_to"] != before["id"]:
            raise SystemExit(f"post {after['id']} does not answer {before['id']}")


async def writer_round(redis_url: str, base_url: str, parts: int, tag: str) -> list[float]:
    private, public = generate_key_pair()
    request = WriteRequest(
        action=WriteAction.THREAD,
        payload={"parts": [{"text": f"{tag} part {i + 1} of {parts}"} for i in range(parts)]},
    )
    message = encode_write_request(ApprovalSigner(private).approve(request, approver="bench"))
    settings = writer_settings(redis_url, base_url, public)
    redis = Redis.from_url(redis_url)
    with tempfile.TemporaryDirectory() as directory:
        # The writer keeps its dev sealing key file in data_dir: a fresh one per round.
        settings = settings.model_copy(update={"data_dir": Path(directory)})
        return await _post_thread(settings, redis, message, base_url, parts)


async def _post_thread(
    settings: Settings, redis: Redis, message: bytes, base_url: str, parts: int
) -> list[float]:
    service = WriterService(settings, redis, secret=bench_secret)
    with anyio.fail_after(RUN_TIMEOUT_S):
        async with anyio.create_task_group() as tg:
            await tg.start(lambda task_status: service.run(task_status=task_status))
            start = time.time()
            await redis.rpush(keys.WRITE_QUEUE, message)
            for _ in range(int(RUN_TIMEOUT_S / 0.005)):
                if await redis.zcard(keys.state_index("executed")) >= 1:
                    break
                await anyio.sleep(0.005)
            service.request_stop()
    await redis.aclose()
    posts = posts_by_time(base_url)
    check_chain(posts, parts)
    return gaps(start, posts)


def reference_round(base_url: str, parts: int, tag: str) -> list[float]:
    headers = {"Authorization": f"Bearer {DEFAULT_BEARER_TOKEN}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        previous: str | None = None
        start = time.time()
        for i in range(parts):
            body: dict[str, object] = {"text": f"{tag} reference part {i + 1}"}
            if previous is not None:
                body["reply"] = {"in_reply_to_tweet_id": previous}
            response = client.post("/2/tweets", json=body)
            response.raise_for_status()
            previous = str(response.json()["data"]["id"])
    posts = posts_by_time(base_url)
    check_chain(posts, parts)
    return gaps(start, posts)


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not 2 <= args.parts <= 25:
        raise SystemExit("--parts: a thread has 2-25 parts")
    configure_logging("prod", "warning", stream=open(os.devnull, "w"))  # noqa: SIM115
    writer: list[list[float]] = []
    reference: list[list[float]] = []
    with redis_server() as redis_url, fake_x() as base_url:
        sync = SyncRedis.from_url(redis_url)
        for round_no in range(args.rounds):
            reset_phase(sync, base_url)
            writer.append(anyio.run(writer_round, redis_url, base_url, args.parts, f"r{round_no}"))
            reset_phase(sync, base_url)
            reference.append(reference_round(base_url, args.parts, f"r{round_no}"))
        sync.close()
    print(f"thread of {args.parts} parts, median of {args.rounds} rounds (ms)")
    print(f"{'part':>4} {'writer':>9} {'reference':>9}")
    for index in range(args.parts):
        ours = [r[index] for r in writer]
        theirs = [r[index] for r in reference]
        print(f"{index + 1:>4} {ms(ours):>9} {ms(theirs):>9}")
    totals = [sum(r) for r in writer]
    reference_totals = [sum(r) for r in reference]
    later = [value for r in writer for value in r[1:]]
    reference_later = [value for r in reference for value in r[1:]]
    print(f"total {ms(totals)} ms (reference {ms(reference_totals)} ms); parts 2-{args.parts}: "
          f"{ms(later)} ms each (reference {ms(reference_later)} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
