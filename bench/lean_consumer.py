"""The lean reference consumer: the least a reliable Redis → X consumer can do.

    python bench/lean_consumer.py REDIS_URL BASE_URL JOBS TASKS [per-slot|shared]

BLMOVE write_queue → processing, POST /2/tweets, LREM processing: ~40 lines of redis.asyncio +
httpx (the writer's own clients), no ledger, no signature check, no logs. Each task has its own
one-connection httpx client, as each writer worker has ("per-slot", the default): httpcore scans
its whole pool on every request, so one shared client with 50 connections ("shared") spends
~2-3x the CPU per POST, which would make the reference measure httpcore's pool, not a consumer.
It runs in its own process so the bench can pin it and read its CPU from /proc. Protocol on
stdin/stdout (shared with the arq/saq peers): it prints READY once connected, starts on a GO
line, prints DONE after JOBS posts were answered 201, and exits on the next line, so its CPU is
read while it lives.
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
from redis.asyncio import Redis

QUEUE = "write_queue"  # twitstack.writes.keys.WRITE_QUEUE, spelled out: no twitstack import
TOKEN = "sandbox-user-1000-token"  # the sandbox default (bench tokens are not checked)


async def consume(redis: Redis, shared: httpx.AsyncClient | None, base_url: str, me: int,
                  left: list[int], finished: asyncio.Event) -> None:  # fmt: skip
    if shared is None:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as own:
            await consume(redis, own, base_url, me, left, finished)
        return
    http = shared
    processing = f"lean:processing:{me}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    while left[0] > 0:
        raw = await redis.blmove(QUEUE, processing, 0.2, "LEFT", "RIGHT")  # type: ignore[arg-type]
        if raw is None:
            continue
        text = json.loads(raw)["payload"]["text"]
        response = await http.post(f"{base_url}/2/tweets", json={"text": text}, headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"lean consumer: X answered {response.status_code}")
        await redis.lrem(processing, 1, raw)
        left[0] -= 1
        if left[0] == 0:
            finished.set()


async def main(redis_url: str, base_url: str, jobs: int, tasks: int, mode: str) -> None:
    redis = Redis.from_url(redis_url, max_connections=tasks + 4)
    await redis.ping()
    limits = httpx.Limits(max_connections=tasks + 2)
    async with httpx.AsyncClient(limits=limits) as shared:
        http = shared if mode == "shared" else None
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        left, finished = [jobs], asyncio.Event()
        workers = [
            asyncio.create_task(consume(redis, http, base_url, i, left, finished))
            for i in range(tasks)
        ]
        waiter = asyncio.create_task(finished.wait())
        await asyncio.wait([waiter, *workers], return_when=asyncio.FIRST_COMPLETED)
        for task in workers:
            task.cancel()
        # Awaited before the connections close: a task cancelled inside BLMOVE must not fail
        # later on a closed connection; a task that failed before the end is the run's error.
        results = await asyncio.gather(*workers, return_exceptions=True)
        waiter.cancel()
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise errors[0]
        print("DONE", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
    await redis.aclose()


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6) or sys.argv[5:] not in ([], ["per-slot"], ["shared"]):
        raise SystemExit(__doc__)
    mode = sys.argv[5] if len(sys.argv) == 6 else "per-slot"
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), mode))
