"""The moderation app served by uvicorn on loopback from a background thread (own event loop).

For clients that drive HTTP synchronously (schemathesis, Playwright, the bench) while the app's
Redis and SQLite connections stay on the one loop that opened them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from argon2 import PasswordHasher

from tests.moderation.harness import Harness, open_harness
from twitstack.core.http_server import serve_asgi
from twitstack.moderation.passwords import PasswordService

Setup = Callable[[Harness], Awaitable[dict[str, Any]]]
Extra = Callable[[Harness], AbstractAsyncContextManager[Any]]


@asynccontextmanager
async def _nothing(_: Harness) -> AsyncIterator[None]:
    yield None


async def _follow_history(harness: Harness, stop: threading.Event) -> None:
    """What the service's ingest loop does: keep the history in step with the ledger."""
    while not stop.is_set():
        await harness.deps.history.sync_once(block_ms=100)


@dataclass(frozen=True)
class LiveApp:
    """Where the app listens and whatever the setup coroutine returned."""

    base_url: str
    info: dict[str, Any]
    portal: Callable[[Callable[[Harness], Awaitable[Any]]], Any]


@contextmanager
def serve_live(
    redis_url: str,
    data_dir: Path,
    setup: Setup,
    *,
    extra: Extra = _nothing,
    **settings: Any,
) -> Iterator[LiveApp]:
    """Serve the app until the block ends; `setup` runs on the app's loop before serving,
    and `extra` (e.g. a writer and the fake X API) runs alongside it on the same loop."""
    started: queue.Queue[tuple[int, dict[str, Any]] | BaseException] = queue.Queue()
    calls: queue.Queue[tuple[Callable[[Harness], Awaitable[Any]], queue.Queue[Any]]] = queue.Queue()
    stop = threading.Event()
    passwords = PasswordService(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))

    async def main() -> None:
        async with open_harness(
            redis_url, data_dir, passwords, secure_cookies=False, **settings
        ) as harness:
            info = await setup(harness)
            async with extra(harness), anyio.create_task_group() as tg:
                tg.start_soon(_follow_history, harness, stop)
                port = await tg.start(
                    partial(serve_asgi, harness.app, host="127.0.0.1", port=0, name="live")
                )
                started.put((port, info))
                while not stop.is_set():
                    # Run work the test thread asks for on this loop (e.g. ingest, inspect).
                    try:
                        work, reply = calls.get_nowait()
                    except queue.Empty:
                        await anyio.sleep(0.02)
                        continue
                    try:
                        reply.put(await work(harness))
                    except Exception as exc:  # handed back to the caller, which re-raises
                        reply.put(exc)
                tg.cancel_scope.cancel()

    def run() -> None:
        try:
            anyio.run(main)
        except BaseException as exc:
            started.put(exc)

    thread = threading.Thread(target=run, name="moderation-live", daemon=True)
    thread.start()
    first = started.get(timeout=30)
    if isinstance(first, BaseException):
        raise first
    port, info = first

    def portal(work: Callable[[Harness], Awaitable[Any]]) -> Any:
        reply: queue.Queue[Any] = queue.Queue()
        calls.put((work, reply))
        result = reply.get(timeout=30)
        if isinstance(result, Exception):
            raise result
        return result

    try:
        yield LiveApp(base_url=f"http://127.0.0.1:{port}", info=info, portal=portal)
    finally:
        stop.set()
        thread.join(timeout=30)
