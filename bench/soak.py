"""Soak: N approved requests through the real `twitstack run` daemon against the fake X API.

Usage: python bench/soak.py [--requests 100000] [--concurrency 16] [--backlog 5000]
       [--spend-caps]

One `twitstack run` subprocess (all three services: the writer executes, moderation ingests
every ledger event into its SQLite history, the scraper idles) against a private redis-server
and the fake X API (a child process, no rate limits). Requests are approved with the signing
helpers (`ApprovalSigner`, the moderation service's own key) and pushed onto write_queue in
batches, keeping at most `--backlog` waiting: that keeps the moderation UI out of the hot path
(its HTTP latency is bench/moderation_load.py's subject) while every request still passes the
writer's signature check.

Printed: throughput; the daemon's RSS after warm-up (5% done), at 50% and at the end; its open
file descriptors at the same points; Redis memory per request kept after completion (terminal
requests stay for the ledger's retention, 30 days by default, then expire, so ledger memory is
bounded by retention x daily volume); and event-loop lag, measured from outside: a probe GETs
the moderation service's /healthz every 100 ms during the run; p99 of that latency minus the
idle p99 measured before the load is the lag the daemon's one event loop adds under load.
Expectation (issue 7): RSS growth < 20 MB after warm-up, fds flat. Also printed: Redis commands
(those run inside scripts included) and Redis CPU per request, and the X spend ledger: its bytes
and what it charged (every post once, at $0.015). `--spend-caps` sets all four caps (never
reached), so two runs show what the budget checks add (issue 18).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from common import fake_x, free_port, redis_server
from redis.asyncio import Redis

from twitstack.core.sealing import generate_key_ring
from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN, DEFAULT_CLIENT_ID
from twitstack.writes import keys
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.signing import ApprovalSigner, generate_key_pair
from twitstack.writes.wire import encode_write_request

READY_TIMEOUT_S = 60.0
BATCH = 500
CONFIG = """\
env = "prod"
redis_url = "{redis_url}"
api_host = "127.0.0.1"
api_port = {api_port}
[supervisor]
metrics_host = "127.0.0.1"
[writer]
x_api_base_url = "{base_url}"
concurrency = {concurrency}
metrics_port = 0
approval_public_keys = ["{public_key}"]
[[writer.accounts]]
name = "default"
user_id = "1000"
client_id = "{client_id}"
access_token_secret = "SOAK_X_ACCESS_TOKEN"
[scraper]
metrics_port = 0
{spend}"""
# --spend-caps: every cap set, none ever reached (each send checks all four).
SPEND_CAPS = """[spend.total]
daily_usd = 1000000.0
monthly_usd = 1000000.0
[spend.accounts.default]
daily_usd = 1000000.0
monthly_usd = 1000000.0
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else float("nan")


def start_daemon(tmp: Path, redis_url: str, base_url: str, concurrency: int, caps: bool) -> tuple[
    subprocess.Popen[bytes], str, ApprovalSigner
]:  # fmt: skip
    private, public = generate_key_pair()
    api_port = free_port()
    config = tmp / "twitstack.toml"
    config.write_text(
        CONFIG.format(redis_url=redis_url, api_port=api_port, base_url=base_url,
                      concurrency=concurrency, public_key=public, client_id=DEFAULT_CLIENT_ID,
                      spend=SPEND_CAPS if caps else "")
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWITSTACK_")}
    env.update({
        "TWITSTACK_CONFIG": str(config), "TWITSTACK_DATA_DIR": str(tmp / "data"),
        "TWITSTACK_MODERATION__APPROVAL_PRIVATE_KEY": private,
        "SOAK_X_ACCESS_TOKEN": DEFAULT_BEARER_TOKEN,
        "TWITSTACK_SEALING_KEYS": generate_key_ring(),  # prod seals OAuth 2.0 tokens with it
    })  # fmt: skip
    script = shutil.which("twitstack")
    command = [script] if script else [sys.executable, "-m", "twitstack"]
    # JSON log lines go to /dev/null: their cost counts, a terminal's does not.
    process = subprocess.Popen(
        [*command, "run"], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    health = f"http://127.0.0.1:{api_port}/healthz"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(health, timeout=1).status_code == 200:
                return process, health, ApprovalSigner(private)
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"twitstack run exited with {process.returncode}")
        time.sleep(0.1)
    process.kill()
    raise SystemExit("twitstack run did not become ready")


async def probe(url: str, out: list[float], stop: anyio.Event) -> None:
    """/healthz latency every 100 ms until `stop`."""
    async with httpx.AsyncClient(timeout=10) as http:
        while not stop.is_set():
            started = time.perf_counter()
            await http.get(url)
            out.append((time.perf_counter() - started) * 1000)
            await anyio.sleep(0.1)


async def soak(args: argparse.Namespace, redis_url: str, health: str, signer: ApprovalSigner,
               pid: int) -> dict[str, object]:  # fmt: skip
    n = args.requests
    redis = Redis.from_url(redis_url)
    idle: list[float] = []
    stop_idle = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe, health, idle, stop_idle)
        await anyio.sleep(10)
        stop_idle.set()
    memory_before = int((await redis.info("memory"))["used_memory"])
    commands_before = await _redis_work(redis)
    executed_key = keys.state_index("executed")
    samples: dict[str, tuple[float, int]] = {}
    loaded: list[float] = []
    stop = anyio.Event()
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe, health, loaded, stop)
        pushed = 0
        for _ in range(n * 100):
            done = int(await redis.zcard(executed_key))
            for label, share in (("warm", 0.05), ("middle", 0.5)):
                if label not in samples and done >= n * share:
                    samples[label] = (rss_mb(pid), open_fds(pid))
            if done >= n:
                break
            if pushed < n and pushed - done < args.backlog:
                count = min(BATCH, n - pushed)
                batch = [
                    encode_write_request(signer.approve(WriteRequest(
                        action=WriteAction.TWEET, payload={"text": f"soak {pushed + i}"}),
                        approver="soak"))
                    for i in range(count)
                ]  # fmt: skip
                await redis.rpush(keys.WRITE_QUEUE, *batch)
                pushed += count
                continue
            await anyio.sleep(0.2)
        elapsed = time.perf_counter() - started
        samples["end"] = (rss_mb(pid), open_fds(pid))
        stop.set()
    await anyio.sleep(2)  # let the last events reach the history and the hashes settle
    memory_after = int((await redis.info("memory"))["used_memory"])
    commands_after = await _redis_work(redis)
    stream_len = int(await redis.xlen(keys.EVENTS))
    # The spend ledger: every send charged once (X's default $0.015 a post), and its size.
    ledger = [k async for k in redis.scan_iter(match="twitstack:writer:spend:*")]
    ledger_bytes = sum([int(await redis.memory_usage(k) or 0) for k in ledger])
    charged = [int(await redis.hget(k, "*|*") or 0) for k in ledger]
    await redis.aclose()
    return {
        "requests": n, "seconds": elapsed, "per_s": n / elapsed,
        "rss_mb": {k: v[0] for k, v in samples.items()},
        "fds": {k: v[1] for k, v in samples.items()},
        "redis_bytes_per_request": (memory_after - memory_before) / n,
        "events_in_stream": stream_len,
        "redis_commands_per_request": (commands_after[0] - commands_before[0]) / n,
        "redis_cpu_us_per_request": (commands_after[1] - commands_before[1]) / n * 1e6,
        "spend_ledger_bytes": ledger_bytes, "spend_charged_micros": charged,
        "healthz_idle_p99_ms": p99(idle), "healthz_load_p50_ms": statistics.median(loaded),
        "healthz_load_p99_ms": p99(loaded), "lag_p99_ms": p99(loaded) - p99(idle),
    }  # fmt: skip


async def _redis_work(redis: Redis) -> tuple[int, float]:
    """Commands Redis ran so far (inside scripts too) and its CPU seconds."""
    stats = await redis.info("commandstats")
    cpu = await redis.info("cpu")
    calls = sum(int(v["calls"]) for v in stats.values())
    return calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--json", action="store_true", help="also print one RESULT json line")
    parser.add_argument(
        "--spend-caps", action="store_true", help="set every spend cap (never reached)"
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="twitstack-soak-") as tmp,
        redis_server() as redis_url,
        fake_x() as base_url,
    ):
        process, health, signer = start_daemon(
            Path(tmp), redis_url, base_url, args.concurrency, args.spend_caps
        )
        try:
            result = anyio.run(soak, args, redis_url, health, signer, process.pid)
            posts = int(httpx.get(base_url + "/_sandbox/state", timeout=30).json()["posts"])
        finally:
            process.terminate()
            process.wait(timeout=60)
    rss, fds = result["rss_mb"], result["fds"]
    assert isinstance(rss, dict)
    assert isinstance(fds, dict)
    print(f"{args.requests} requests in {result['seconds']:.0f} s: {result['per_s']:.1f} req/s "
          f"(fake X stored {posts})")  # fmt: skip
    print(f"RSS MiB   warm {rss['warm']:.1f}   middle {rss['middle']:.1f}   end {rss['end']:.1f}"
          f"   growth after warm-up {rss['end'] - rss['warm']:+.1f} (target < 20)")  # fmt: skip
    print(f"open fds  warm {fds['warm']}   middle {fds['middle']}   end {fds['end']}")
    print(f"Redis memory kept per completed request: {result['redis_bytes_per_request']:.0f} B "
          f"(retention 30 days; {result['events_in_stream']} events in writes:events)")  # fmt: skip
    print(f"/healthz p99 idle {result['healthz_idle_p99_ms']:.1f} ms, under load "
          f"{result['healthz_load_p99_ms']:.1f} ms -> event-loop lag p99 ~ "
          f"{result['lag_p99_ms']:.1f} ms")  # fmt: skip
    charged = result["spend_charged_micros"]
    assert isinstance(charged, list)
    print(f"Redis per request: {result['redis_commands_per_request']:.1f} commands (inside "
          f"scripts too), {result['redis_cpu_us_per_request']:.0f} µs CPU; spend ledger "
          f"{'with' if args.spend_caps else 'without'} caps: {result['spend_ledger_bytes']} B in "
          f"all, charged {[c / 1e6 for c in charged]} USD for {posts} posts")  # fmt: skip
    if args.json:
        print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
