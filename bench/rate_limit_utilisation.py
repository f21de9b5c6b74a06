"""How much of X's per-user window the writer uses, and how often X had to answer 429.

Usage: python bench/rate_limit_utilisation.py [--limit 100] [--window 6] [--windows 3]

The fake X API (a child process, wall clock) allows `limit` POST /2/tweets per `window`
seconds for the account. The real writer gets `limit * windows + limit // 2` approved tweets
at once. For every window that had work waiting, the bench prints the share of its budget
used (target >= 98%), the idle time between X's reset and the first post of the next window,
and the number of 429s X sent (target 0: the writer must never send to an exhausted window).
"""

from __future__ import annotations

import argparse
import os
import time

import anyio
import httpx
from common import (
    approved_tweets,
    bench_secret,
    fake_x,
    redis_server,
    writer_settings,
)
from redis.asyncio import Redis

from twitstack.core.logging import configure_logging
from twitstack.writer.service import WriterService
from twitstack.writes import keys
from twitstack.writes.signing import ApprovalSigner, generate_key_pair

RUN_TIMEOUT_S = 600.0


async def run(redis_url: str, base_url: str, public: str, messages: list[bytes]) -> float:
    """Run the writer until every message is executed; returns the 429 count it saw."""
    settings = writer_settings(
        redis_url, base_url, public, concurrency=8, rate_limit_margin_s=0.2, rate_limit_jitter_s=0.2
    )
    redis = Redis.from_url(redis_url)
    await redis.rpush(keys.WRITE_QUEUE, *messages)
    service = WriterService(settings, redis, secret=bench_secret)
    with anyio.fail_after(RUN_TIMEOUT_S):
        async with anyio.create_task_group() as tg:
            await tg.start(lambda task_status: service.run(task_status=task_status))
            for _ in range(int(RUN_TIMEOUT_S / 0.1)):
                if await redis.zcard(keys.state_index("executed")) >= len(messages):
                    break
                await anyio.sleep(0.1)
            service.request_stop()
    await redis.aclose()
    refused = service.registry.get_sample_value(
        "writer_outcomes_total", {"action": "tweet", "kind": "wait_until", "reason": "rate_limited"}
    )
    return refused or 0.0


def windows(created: list[float], window_s: float) -> list[tuple[float, int]]:
    """Group post times into the fake's windows (each opens at its first request)."""
    groups: list[tuple[float, int]] = []
    for stamp in sorted(created):
        if groups and stamp < groups[-1][0] + window_s:
            groups[-1] = (groups[-1][0], groups[-1][1] + 1)
        else:
            groups.append((stamp, 1))
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--windows", type=int, default=3)
    args = parser.parse_args()
    configure_logging("prod", "info", stream=open(os.devnull, "w"))  # noqa: SIM115
    private, public = generate_key_pair()
    total = args.limit * args.windows + args.limit // 2
    messages = approved_tweets(ApprovalSigner(private), total, "utilisation")
    with redis_server() as redis_url, fake_x(limit=args.limit, window_s=args.window) as base_url:
        started = time.perf_counter()
        refused = anyio.run(run, redis_url, base_url, public, messages)
        elapsed = time.perf_counter() - started
        posts = httpx.get(base_url + "/_sandbox/posts", timeout=30).json()["posts"]
    groups = windows([float(p["created_at"]) for p in posts], args.window)
    print(f"{total} tweets, limit {args.limit} per {args.window:g} s window, {elapsed:.1f} s")
    previous_end = None
    for index, (opened, used) in enumerate(groups):
        gap = "" if previous_end is None else f"   idle after reset {opened - previous_end:5.2f} s"
        full = index < len(groups) - 1
        share = f"{used / args.limit:6.1%}" if full else f"{used} left over (last window)"
        print(f"window {index + 1}: {used:4d} posts   budget used {share}{gap}")
        previous_end = opened + args.window
    print(f"429 answers from X: {refused:.0f} (target 0)")
    full_windows = [used for _, used in groups[:-1]]
    worst = min(full_windows) / args.limit if full_windows else 0.0
    print(f"worst full-window utilisation: {worst:.1%} (target >= 98%)")


if __name__ == "__main__":
    main()
