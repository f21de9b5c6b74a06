"""Jobs/s of arq and saq doing the writer's job (one POST /2/tweets), beside the twitstack writer.

Usage: python bench/peers.py [--requests 2000] [--concurrency 16] [--venv DIR]

arq and saq are what users would pick instead of twitstack's writer for "take a job from Redis,
call an HTTP API". They are installed from PyPI into a throwaway venv (`python -m venv` + pip)
under a temporary directory, unless `--venv` names one to create or reuse. Each runs in that
venv's interpreter: N no-op POST jobs are enqueued, then a burst-mode worker with `--concurrency`
slots runs them against the fake X API (a child process, no rate limits) and the time from
worker start to the last job done is measured. The twitstack writer and the lean reference
consumer run the same N posts against the same fake and Redis (via bench/writer_throughput.py's
functions); the writer also verifies an Ed25519 approval, records the ledger, commits `sending`
before each POST and logs a JSON line per state change, which the peers do not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio
import httpx
import redis
from writer_throughput import (
    approved_tweets,
    fake_x,
    redis_server,
    reset_phase,
    run_lean,
    run_writer,
    writer_settings,
)

from twitstack.core.logging import configure_logging
from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN
from twitstack.writes.signing import ApprovalSigner, generate_key_pair

PEER_TIMEOUT_S = 600
PACKAGES = ["arq==0.28.0", "saq==0.26.4", "httpx"]

# Runs inside the peers' venv: argv = kind, redis_url, base_url, requests, concurrency, token.
PEER_SCRIPT = r"""
import asyncio, sys, time
import httpx

kind, redis_url, base_url, n, slots, token = sys.argv[1:7]
n, slots = int(n), int(slots)
headers = {"Authorization": f"Bearer {token}"}

async def post(ctx, text):
    response = await ctx["http"].post(f"{base_url}/2/tweets", json={"text": text}, headers=headers)
    if response.status_code != 201:
        raise RuntimeError(f"X answered {response.status_code}")

async def saq_post(ctx, *, text):  # saq passes keyword arguments; registered by name
    await post(ctx, text)

async def startup(ctx):
    ctx["http"] = httpx.AsyncClient(limits=httpx.Limits(max_connections=slots * 2))

async def shutdown(ctx):
    await ctx["http"].aclose()

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
    started = time.perf_counter()
    await worker.async_run()
    elapsed = time.perf_counter() - started
    done = worker.jobs_complete
    await worker.close()
    await pool.aclose()
    return done, elapsed

async def run_saq():
    from saq import Queue, Worker
    queue = Queue.from_url(redis_url)
    await queue.connect()

    for i in range(n):
        await queue.enqueue("saq_post", text=f"saq {i}")
    worker = Worker(queue, functions=[saq_post], concurrency=slots, burst=True, dequeue_timeout=0.2,
                    startup=startup, shutdown=shutdown)
    started = time.perf_counter()
    await worker.start()
    elapsed = time.perf_counter() - started
    await queue.disconnect()
    # burst=True returns once the queue is drained; the fake's post count is checked outside.
    return n, elapsed

done, elapsed = asyncio.run(run_arq() if kind == "arq" else run_saq())
print(f"{done} {elapsed}")
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


def run_peer(python: Path, kind: str, redis_url: str, base_url: str, n: int, slots: int) -> float:
    """Jobs/s of one peer, run in the venv's interpreter."""
    result = subprocess.run(
        [str(python), "-c", PEER_SCRIPT, kind, redis_url, base_url, str(n), str(slots),
         DEFAULT_BEARER_TOKEN],
        check=False, capture_output=True, text=True, timeout=PEER_TIMEOUT_S,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{result.stderr[-3000:]}")
    done, elapsed = result.stdout.split()
    if int(done) < n:
        raise SystemExit(f"{kind} finished only {done} of {n} jobs")
    return n / float(elapsed)


def rate_of(result: object) -> float:
    """writer_throughput's runners return req/s, or (req/s, CPU ms per request) since fa44cff."""
    value = result[0] if isinstance(result, tuple) else result
    return float(value)  # type: ignore[arg-type]


def posts_at_fake(base_url: str) -> int:
    return int(httpx.get(base_url + "/_sandbox/state", timeout=10).json()["posts"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--venv", type=Path, help="create or reuse the peers' venv here")
    parser.add_argument("--json", action="store_true", help="also print one RESULT json line")
    args = parser.parse_args()
    configure_logging("prod", "info", stream=open(os.devnull, "w"))  # noqa: SIM115
    n, slots = args.requests, args.concurrency
    private, public = generate_key_pair()
    signer = ApprovalSigner(private)
    rates: dict[str, float] = {}
    stored: dict[str, int] = {}  # posts the fake X holds after each run (> n: a double send)
    with tempfile.TemporaryDirectory(prefix="twitstack-peers-") as tmp:
        print(f"installing {', '.join(PACKAGES)} into a throwaway venv...", flush=True)
        python = make_venv(args.venv or Path(tmp) / "venv")
        with redis_server() as redis_url, fake_x() as base_url:
            flush = redis.Redis.from_url(redis_url)
            for kind in ("arq", "saq"):
                reset_phase(flush, base_url)
                rates[kind] = run_peer(python, kind, redis_url, base_url, n, slots)
                stored[kind] = posts_at_fake(base_url)
            reset_phase(flush, base_url)
            messages = approved_tweets(signer, n, "lean")
            lean = anyio.run(run_lean, redis_url, base_url, messages, slots)
            rates["lean reference"] = rate_of(lean)
            stored["lean reference"] = posts_at_fake(base_url)
            reset_phase(flush, base_url)
            settings = writer_settings(redis_url, base_url, public, concurrency=slots)
            messages = approved_tweets(signer, n, "writer")
            rates["twitstack writer"] = rate_of(
                anyio.run(run_writer, settings, redis_url, messages)
            )
            stored["twitstack writer"] = posts_at_fake(base_url)
            flush.close()
    print(f"{n} no-op POST jobs, {slots} concurrent slots, same fake X and Redis")
    writer = rates["twitstack writer"]
    for name, rate in rates.items():
        print(
            f"{name:<18} {rate:8.1f} jobs/s   writer / this {writer / rate:5.2f}"
            f"   posts at the fake {stored[name]} of {n}"
        )
    if args.json:
        print("RESULT " + json.dumps({"jobs_per_s": rates, "posts": stored, "jobs": n}))


if __name__ == "__main__":
    main()
