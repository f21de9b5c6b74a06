"""Requests/s through the real writer vs a lean reference consumer, same fake X, same run.

Usage: python bench/writer_throughput.py [--requests 2000] [--concurrency 16] [--rounds 2]
                                        [--x-latency-ms 0]

Both consumers take approved tweets from `write_queue` in a private redis-server and POST them
to the fake X API (a child process, no rate limits). The lean reference is the minimum that is
still reliable (BLMOVE -> POST -> LREM, ~40 lines of redis.asyncio + httpx); the writer adds the
ledger, the approval signature check, the `sending` commit before the POST, rate-limit budgets
and one JSON log line per state change (written to /dev/null). Ratio = writer / lean; the
target is >= 0.8.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import httpx
import redis
from redis.asyncio import Redis

from twitstack.core.config import Settings, load
from twitstack.core.logging import configure_logging
from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN, DEFAULT_CLIENT_ID
from twitstack.writer.service import WriterService
from twitstack.writes import keys
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.signing import ApprovalSigner, generate_key_pair
from twitstack.writes.wire import encode_write_request

START_TIMEOUT_S = 15.0
RUN_TIMEOUT_S = 600.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                "--appendonly", "no", "--dir", directory]  # fmt: skip
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            for _ in range(int(START_TIMEOUT_S / 0.02)):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            client.close()
            process.kill()
            process.wait()


@contextmanager
def fake_x(*, limit: int = 0, window_s: float = 900.0, latency_s: float = 0.0) -> Iterator[str]:
    """The fake X API in a child process (it must not share our CPU); yields its base URL."""
    port = free_port()
    here = os.path.abspath(__file__)
    args = [sys.executable, here, "--serve-fake", str(port), str(limit), str(window_s),
            str(latency_s)]  # fmt: skip
    process = subprocess.Popen(args)
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(int(START_TIMEOUT_S / 0.05)):
            try:
                if httpx.get(base_url + "/2/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise SystemExit("the fake X API exited")
            time.sleep(0.05)
        else:
            raise SystemExit("the fake X API did not start")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def serve_fake(port: int, limit: int, window_s: float, latency_s: float) -> None:
    """Child process body: the fake X API, optionally windowed and slowed like the real X."""
    from twitstack.core.http_server import serve_asgi
    from twitstack.sandbox.xapi.app import create_xapi_app
    from twitstack.sandbox.xapi.config import (
        Endpoint,
        FaultKind,
        FaultSettings,
        LimitScope,
        WindowLimit,
        XApiSandboxConfig,
    )

    window = (WindowLimit(scope=LimitScope.USER, limit=limit, window_s=window_s),)
    config = XApiSandboxConfig(
        rate_limits={Endpoint.CREATE_TWEET: window if limit else ()},  # () = unlimited
        duplicate_lookback_posts=0,  # texts are unique anyway; keep the fake's work flat
        faults=FaultSettings(rates={FaultKind.LATENCY: 1.0}, latency_s=latency_s)
        if latency_s
        else FaultSettings(),
    )
    app = create_xapi_app(config)
    anyio.run(lambda: serve_asgi(app, host="127.0.0.1", port=port, name="bench-fake-x"))


def writer_settings(redis_url: str, base_url: str, public_key: str, **writer: object) -> Settings:
    """Settings for a bench writer: one OAuth2 account at the fake, no metrics port."""
    section: dict[str, object] = {
        "x_api_base_url": base_url,
        "accounts": [{"name": "default", "user_id": "1000", "client_id": DEFAULT_CLIENT_ID,
                      "access_token_secret": "BENCH_ACCESS"}],
        "approval_public_keys": [public_key],
        "metrics_port": None,
        "schedule_poll_s": 0.05,
        "take_timeout_s": 0.2,
    }  # fmt: skip
    section.update(writer)
    return load(os.devnull, env_file=None, redis_url=redis_url, writer=section).settings


async def bench_secret(name: str) -> str | None:
    return DEFAULT_BEARER_TOKEN if name == "BENCH_ACCESS" else None


def approved_tweets(signer: ApprovalSigner, count: int, tag: str) -> list[bytes]:
    return [
        encode_write_request(
            signer.approve(
                WriteRequest(action=WriteAction.TWEET, payload={"text": f"{tag} {i}"}),
                approver="bench",
            )
        )
        for i in range(count)
    ]


# --- the lean reference consumer: the least a reliable consumer can do ---------------------
async def lean_consumer(redis: Redis, http: httpx.AsyncClient, base_url: str, me: str) -> int:
    processing = f"lean:processing:{me}"
    done = 0
    while True:
        raw = await redis.blmove(keys.WRITE_QUEUE, processing, 0.2, "LEFT", "RIGHT")  # type: ignore[arg-type]
        if raw is None:
            return done
        text = json.loads(raw)["payload"]["text"]
        response = await http.post(
            f"{base_url}/2/tweets",
            json={"text": text},
            headers={"Authorization": f"Bearer {DEFAULT_BEARER_TOKEN}"},
        )
        if response.status_code != 201:
            raise RuntimeError(f"lean consumer: X answered {response.status_code}")
        await redis.lrem(processing, 1, raw)
        done += 1


async def run_lean(
    redis_url: str, base_url: str, messages: list[bytes], workers: int
) -> tuple[float, float]:
    redis = Redis.from_url(redis_url, max_connections=workers + 4)
    await redis.rpush(keys.WRITE_QUEUE, *messages)
    limits = httpx.Limits(max_connections=workers + 2)  # as the writer sizes its pool
    async with httpx.AsyncClient(limits=limits) as http:
        started = time.perf_counter()
        cpu = time.process_time()
        counts: list[int] = []

        async def one(i: int) -> None:
            counts.append(await lean_consumer(redis, http, base_url, str(i)))

        with anyio.fail_after(RUN_TIMEOUT_S):
            async with anyio.create_task_group() as tg:
                for i in range(workers):
                    tg.start_soon(one, i)
        elapsed = time.perf_counter() - started - 0.2  # the final idle BLMOVE timeout
        cpu = time.process_time() - cpu
    await redis.aclose()
    assert sum(counts) == len(messages), f"lean handled {sum(counts)} of {len(messages)}"
    return len(messages) / elapsed, cpu * 1000 / len(messages)


# --- end of the lean reference --------------------------------------------------------------


async def run_writer(
    settings: Settings, redis_url: str, messages: list[bytes]
) -> tuple[float, float]:
    redis = Redis.from_url(redis_url, max_connections=settings.writer.concurrency * 2 + 16)
    await redis.rpush(keys.WRITE_QUEUE, *messages)
    service = WriterService(settings, redis, secret=bench_secret)
    executed = keys.state_index("executed")
    with anyio.fail_after(RUN_TIMEOUT_S):
        async with anyio.create_task_group() as tg:
            await tg.start(lambda task_status: service.run(task_status=task_status))
            started = time.perf_counter()
            cpu = time.process_time()
            # Polled coarsely: the poll shares the writer's CPU (50 ms on a multi-second run).
            for _ in range(int(RUN_TIMEOUT_S / 0.05)):
                if await redis.zcard(executed) >= len(messages):
                    break
                await anyio.sleep(0.05)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            service.request_stop()
    await redis.aclose()
    return len(messages) / elapsed, cpu * 1000 / len(messages)


def reset_phase(redis_client: redis.Redis, base_url: str) -> None:
    """Both sides start from an empty Redis and an empty fake X."""
    redis_client.flushdb()
    httpx.post(base_url + "/_sandbox/reset", timeout=10).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--x-latency-ms",
        type=float,
        default=0.0,
        help="make the fake answer every write this late (real X takes ~100-300 ms)",
    )
    parser.add_argument("--serve-fake", nargs=4, metavar=("PORT", "LIMIT", "WINDOW", "LATENCY"))
    args = parser.parse_args()
    if args.serve_fake:
        port, limit, window, latency = args.serve_fake
        serve_fake(int(port), int(limit), float(window), float(latency))
        return
    # Production logging (JSON lines), to /dev/null: its cost counts, a terminal's does not.
    configure_logging("prod", "info", stream=open(os.devnull, "w"))  # noqa: SIM115
    private, public = generate_key_pair()
    signer = ApprovalSigner(private)
    print(
        f"{args.requests} tweets per run, {args.concurrency} concurrent consumers, "
        f"fake X latency {args.x_latency_ms:g} ms"
    )
    ratios = []
    with redis_server() as redis_url, fake_x(latency_s=args.x_latency_ms / 1000) as base_url:
        settings = writer_settings(redis_url, base_url, public, concurrency=args.concurrency)
        flush = redis.Redis.from_url(redis_url)
        for round_no in range(args.rounds):
            reset_phase(flush, base_url)
            lean_messages = approved_tweets(signer, args.requests, f"lean r{round_no}")
            lean, lean_cpu = anyio.run(
                run_lean, redis_url, base_url, lean_messages, args.concurrency
            )
            reset_phase(flush, base_url)
            writer_messages = approved_tweets(signer, args.requests, f"writer r{round_no}")
            writer, writer_cpu = anyio.run(run_writer, settings, redis_url, writer_messages)
            ratios.append(writer / lean)
            print(
                f"round {round_no + 1}: lean {lean:7.1f} req/s ({lean_cpu:.2f} ms CPU/req)   "
                f"writer {writer:7.1f} req/s ({writer_cpu:.2f} ms CPU/req)   "
                f"ratio {writer / lean:.2f}"
            )
        flush.close()
    print(f"ratio writer/lean: best {max(ratios):.2f}, worst {min(ratios):.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
