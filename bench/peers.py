"""arq and saq doing the writer's job (one POST /2/tweets), in a throwaway venv.

Usage: python bench/peers.py [writer_throughput.py's options]

arq and saq are what users would pick instead of twitstack's writer for "take a job from Redis,
call an HTTP API". They are installed from PyPI into a throwaway venv (`python -m venv` + pip)
under a temporary directory, unless `--venv` names one to create or reuse. Each runs in that
venv's interpreter as its own process (pinned to the consumers' CPU), enqueues N no-op POST jobs,
then, on the bench's GO, runs a burst-mode worker with `--concurrency` slots. The measurement
itself (jobs/s, worker CPU, Redis commands and CPU per job, beside the writer and the lean
reference, same run) is `bench/writer_throughput.py`'s; this script runs it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGES = ["arq==0.28.0", "saq==0.26.4", "httpx"]

# Runs inside the peers' venv: argv = kind, redis_url, base_url, jobs, slots, token, http.
# Protocol (as bench/lean_consumer.py): READY after enqueueing, GO on stdin, DONE, exit on stdin.
# http "per-slot": a job borrows one of `slots` single-connection clients, the HTTP set-up the
# writer and the lean reference use (httpcore scans its whole pool on every request, so one
# client with 50 connections costs ~2-3x the CPU per POST of 50 one-connection clients);
# "shared": one client with slots + 2 connections, as arq's and saq's docs show a job context.
PEER_SCRIPT = r"""
import asyncio, sys, time
import httpx

kind, redis_url, base_url, n, slots, token, http = sys.argv[1:8]
n, slots = int(n), int(slots)
headers = {"Authorization": f"Bearer {token}"}

async def post(ctx, text):
    clients = ctx["clients"]
    client = ctx["http"] if clients is None else clients.get_nowait()
    try:
        response = await client.post(f"{base_url}/2/tweets", json={"text": text}, headers=headers)
    finally:
        if clients is not None:
            clients.put_nowait(client)
    if response.status_code != 201:
        raise RuntimeError(f"X answered {response.status_code}")

async def saq_post(ctx, *, text):  # saq passes keyword arguments; registered by name
    await post(ctx, text)

async def startup(ctx):
    ctx["clients"] = None
    if http == "shared":
        ctx["http"] = httpx.AsyncClient(limits=httpx.Limits(max_connections=slots + 2))
        ctx["all"] = [ctx["http"]]
        return
    # At most `slots` jobs run at once, so a free client is always there (get_nowait).
    ctx["clients"] = asyncio.Queue()
    ctx["all"] = [httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) for _ in range(slots)]
    for client in ctx["all"]:
        ctx["clients"].put_nowait(client)

async def shutdown(ctx):
    for client in ctx["all"]:
        await client.aclose()

async def go():
    print("READY", flush=True)
    await asyncio.to_thread(sys.stdin.readline)

async def run_arq():
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.worker import Worker
    settings = RedisSettings.from_dsn(redis_url)
    pool = await create_pool(settings)
    for i in range(n):
        await pool.enqueue_job("post", f"arq {i}")
    worker = Worker(functions=[post], redis_settings=settings, max_jobs=slots, burst=True,
                    on_startup=startup, on_shutdown=shutdown, poll_delay=0.05,
                    handle_signals=False)
    await go()
    await worker.async_run()
    done = worker.jobs_complete
    await worker.close()
    await pool.aclose()
    return done

async def run_saq():
    from saq import Queue, Worker
    queue = Queue.from_url(redis_url)
    await queue.connect()
    for i in range(n):
        await queue.enqueue("saq_post", text=f"saq {i}")
    worker = Worker(queue, functions=[saq_post], concurrency=slots, burst=True,
                    dequeue_timeout=0.2, startup=startup, shutdown=shutdown)
    await go()
    await worker.start()
    await queue.disconnect()
    return n  # burst=True returns once drained; the fake's post count is checked outside

done = asyncio.run(run_arq() if kind == "arq" else run_saq())
print(f"DONE {done}", flush=True)
sys.stdin.readline()
"""


def make_venv(directory: Path) -> Path:
    """A venv with arq and saq from PyPI; returns its python."""
    python = directory / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PACKAGES],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return python


if __name__ == "__main__":
    from writer_throughput import main

    main()
