"""Latency of the moderation queue page and JSON list under load, next to a bare Starlette route.

Usage: python bench/moderation_load.py [--pending 10000] [--clients 20] [--requests 50]
                                       [--approvals 500] [--redis-url URL]

Seeds `--pending` pending requests into the ledger (a private redis-server on a free loopback port
unless --redis-url is given) and ingests them into the history store. A child process then serves
the real app and a one-route Starlette app with uvicorn on 127.0.0.1 (one event loop, like the
daemon), while this process is the load: `--clients` concurrent httpx clients each send
`--requests` GETs per target; p50/p99 are reported with the ratio to the bare route. Finally
`--approvals` requests are approved through the JSON API by the same clients (approvals/s).
Target: queue page p99 < 50 ms.

The queue page and JSON list reuse a rendered page until the projection changes (or for 1 s),
so `queue_page` and `json_list` mostly measure that path; `queue_miss` asks for a random
author, page and page size each time, so nearly every request queries SQLite and renders.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from argon2 import PasswordHasher
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from twitstack.core.http_server import serve_asgi
from twitstack.core.logging import configure_logging
from twitstack.core.metrics import new_registry
from twitstack.core.sections.moderation import ModerationSettings
from twitstack.moderation.app import create_app
from twitstack.moderation.deps import ModerationDeps
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.roles import Role
from twitstack.moderation.wiring import open_moderation_deps
from twitstack.writes.models import WriteAction, WriteRequest

BENCH_TIMEOUT_S = 900


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def private_redis(directory: Path) -> AsyncIterator[str]:
    """A throwaway redis-server on loopback, stopped on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found; install it or pass --redis-url")
    port = _free_port()
    process = await anyio.open_process(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = Redis.from_url(url)
        with anyio.fail_after(10):
            for _ in range(500):
                try:
                    await client.ping()
                    break
                except (OSError, RedisConnectionError):
                    await anyio.sleep(0.02)
        await client.aclose()
        yield url
    finally:
        process.terminate()
        with anyio.fail_after(10):
            await process.wait()


def _bare_app() -> Starlette:
    body = "<!doctype html><title>bare</title><p>ok</p>"

    async def bare(_: Request) -> HTMLResponse:
        return HTMLResponse(body)

    return Starlette(routes=[Route("/bare", bare)])


async def seed(deps: ModerationDeps, pending: int) -> None:
    ledger = deps.decisions.ledger
    async with anyio.create_task_group() as tg:
        # 8 writers in parallel: each record is one Lua call.
        for worker in range(8):

            async def fill(start: int) -> None:
                for i in range(start, pending, 8):
                    request = WriteRequest(
                        action=WriteAction.TWEET,
                        payload={"text": f"bench request number {i} with some words in it"},
                        author=f"author{i % 17}",
                        account=f"acct{i % 3}",
                    )
                    await ledger.record(request, actor="bench")

            tg.start_soon(fill, worker)
    await deps.history.catch_up()


class RawClient:
    """A minimal keep-alive HTTP/1.1 client: httpx's own overhead would dominate the numbers."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self._port = port
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._stream: Any = None
        self._buffer = b""

    async def __aenter__(self) -> RawClient:
        self._stream = await anyio.connect_tcp("127.0.0.1", self._port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stream.aclose()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self._headers}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        await self._stream.send(head.encode() + body)
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += await self._stream.receive()
        header, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length")
        )
        while len(self._buffer) < length:
            self._buffer += await self._stream.receive()
        payload, self._buffer = self._buffer[:length], self._buffer[length:]
        return status, payload


async def measure(
    clients: int,
    per_client: int,
    call: Callable[[RawClient], Awaitable[tuple[int, bytes]]],
    make_client: Callable[[], RawClient],
) -> list[float]:
    """Latencies (s) of clients x per_client calls; every response must be 200."""
    latencies: list[float] = []

    async def one_client() -> None:
        async with make_client() as client:
            for _ in range(per_client):
                started = time.perf_counter()
                status, body = await call(client)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    raise RuntimeError(f"unexpected {status}: {body[:200]!r}")

    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(one_client)
    return latencies


def _random_queue_page() -> str:
    """A queue view that is almost never cached: 17 authors x 40 pages x 41 page sizes."""
    author, page, size = random.randrange(17), random.randint(1, 40), random.randint(20, 60)
    return f"/queue?author=author{author}&page={page}&size={size}"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def serve(args: argparse.Namespace) -> None:
    """Child process: seed, serve both apps, print where (one JSON line), run until stdin closes."""
    configure_logging("prod", "warning")
    directory = Path(args.data_dir)
    redis = Redis.from_url(args.redis_url)
    passwords = PasswordService(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    async with open_moderation_deps(
        ModerationSettings(secure_cookies=False),
        redis=redis,
        data_dir=directory,
        registry=new_registry(),
        passwords=passwords,
    ) as deps:
        started = time.perf_counter()
        await seed(deps, args.pending)
        seed_s = time.perf_counter() - started
        mod = await deps.users.create("bench-mod", "bench moderator pw", Role.MODERATOR)
        token, _ = await deps.sessions.create(mod.id)
        _, key = await deps.apikeys.create(mod.id, "bench", ["read", "moderate"])
        pending_ids = [
            r[0]
            for r in await deps.db.fetchall(
                "SELECT id FROM requests WHERE state = 'pending' LIMIT ?", (args.approvals,)
            )
        ]
        # An approval carries the content hash of what was reviewed (GET /api/requests/{id}).
        ids = [
            [r.request.id, r.request.content_hash()]
            for r in await deps.decisions.ledger.get_many(pending_ids)
        ]
        async with anyio.create_task_group() as tg:
            app_port = await tg.start(
                partial(serve_asgi, create_app(deps), host="127.0.0.1", port=0, name="mod")
            )
            bare_port = await tg.start(
                partial(serve_asgi, _bare_app(), host="127.0.0.1", port=0, name="bare")
            )
            ready = {
                "app_port": app_port,
                "bare_port": bare_port,
                "session": token,
                "bearer": deps.tokens.issue(key),
                "ids": ids,
                "seed_s": seed_s,
            }
            print(json.dumps(ready), flush=True)
            # The parent closes our stdin when it is done.
            await anyio.to_thread.run_sync(sys.stdin.read)
            tg.cancel_scope.cancel()
    await redis.aclose()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Parent process: Redis, the serving child, then the load."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        redis_cm = private_redis(directory) if args.redis_url is None else _given(args.redis_url)
        async with redis_cm as url:
            command = [
                sys.executable, __file__, "--serve", "--redis-url", url, "--data-dir", tmp,
                "--pending", str(args.pending), "--approvals", str(args.approvals),
            ]  # fmt: skip
            async with await anyio.open_process(command) as child:
                assert child.stdout is not None
                assert child.stdin is not None
                ready = await _ready_line(child.stdout)
                results = await _load(args, ready)
                await child.stdin.aclose()
                with anyio.fail_after(30):
                    await child.wait()
    results["seed_s"] = ready["seed_s"]
    return results


async def _ready_line(stdout: Any) -> dict[str, Any]:
    """The child's JSON hand-over line (its log lines may come first)."""
    buffer = b""
    with anyio.fail_after(BENCH_TIMEOUT_S):
        async for chunk in stdout:
            buffer += chunk
            for line in buffer.split(b"\n")[:-1]:
                if line.startswith(b'{"app_port"'):
                    ready: dict[str, Any] = json.loads(line)
                    return ready
    raise RuntimeError(f"the serving process exited without reporting: {buffer[-500:]!r}")


@asynccontextmanager
async def _given(url: str) -> AsyncIterator[str]:
    yield url


async def _load(args: argparse.Namespace, ready: dict[str, Any]) -> dict[str, Any]:
    app_port, bare_port, session = ready["app_port"], ready["bare_port"], ready["session"]
    bearer = {"authorization": f"Bearer {ready['bearer']}"}

    def app_client() -> RawClient:
        return RawClient(app_port, {"Cookie": f"twitstack_session={session}"})

    def api_client() -> RawClient:
        return RawClient(app_port, bearer)

    def bare_client() -> RawClient:
        return RawClient(bare_port, {})

    clients, per = args.clients, args.requests
    # Warm-up: connections, template compilation, SQLite page cache.
    await measure(clients, 5, lambda c: c.request("GET", "/queue"), app_client)
    await measure(clients, 5, lambda c: c.request("GET", "/bare"), bare_client)
    out: dict[str, Any] = {"pending": args.pending, "clients": clients, "requests": per}
    targets: dict[str, tuple[Callable[[RawClient], Awaitable[tuple[int, bytes]]], Any]] = {
        "bare": (lambda c: c.request("GET", "/bare"), bare_client),
        "queue_page": (lambda c: c.request("GET", "/queue"), app_client),
        "json_list": (lambda c: c.request("GET", "/api/requests"), api_client),
        "queue_miss": (lambda c: c.request("GET", _random_queue_page()), app_client),
    }
    for name, (call, factory) in targets.items():
        latencies = await measure(clients, per, call, factory)
        out[name] = {"p50_ms": _pct(latencies, 0.50), "p99_ms": _pct(latencies, 0.99)}
    ids: list[list[str]] = ready["ids"]
    queue: list[list[str]] = list(ids)

    async def approve(client: RawClient) -> tuple[int, bytes]:
        request_id, content_hash = queue.pop()
        body = {"revision": 1, "content_hash": content_hash}
        return await client.request(
            "POST", f"/api/requests/{request_id}/approve", json.dumps(body).encode()
        )

    per_client = len(ids) // clients
    started = time.perf_counter()
    done = await measure(clients, per_client, approve, api_client)
    out["approvals_per_s"] = len(done) / (time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="per client and target")
    parser.add_argument("--approvals", type=int, default=500)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        anyio.run(serve, args)
        return

    async def bounded() -> dict[str, Any]:
        with anyio.fail_after(BENCH_TIMEOUT_S):
            return await run(args)

    results = anyio.run(bounded)
    bare = results["bare"]
    print(
        f"{results['pending']} pending, {results['clients']} clients"
        f" x {results['requests']} requests per target (seeded in {results['seed_s']:.1f} s)"
    )
    print(f"{'target':<12} {'p50 ms':>8} {'p99 ms':>8} {'p99 / bare':>11}")
    for name in ("bare", "queue_page", "json_list", "queue_miss"):
        row = results[name]
        ratio = row["p99_ms"] / bare["p99_ms"] if bare["p99_ms"] else float("nan")
        print(f"{name:<12} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {ratio:>11.1f}")
    print(f"approvals/s  {results['approvals_per_s']:.0f}")
    target = "met" if results["queue_page"]["p99_ms"] < 50 else "NOT met"
    print(f"target queue page p99 < 50 ms: {target}")


if __name__ == "__main__":
    main()
