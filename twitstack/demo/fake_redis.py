"""The demo's Redis: fakeredis in process, with blocking reads that really block, and the
same data served on a loopback TCP port for the CLI and producer scripts.

fakeredis answers BLMOVE and XREAD BLOCK at once when there is nothing to read, which would
turn the writer's and moderation's waits into busy loops; these overrides poll instead.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import fakeredis

from twitstack.core.errors import PortInUseError, StartupError

_POLL_S = 0.05  # how often a blocked read looks again; the demo's latency floor


class BlockingFakeRedis(fakeredis.FakeAsyncRedis):
    """fakeredis whose BLMOVE and XREAD BLOCK wait for data like a real server."""

    async def blmove(
        self,
        first_list: Any,
        second_list: Any,
        timeout: float,
        src: str = "LEFT",
        dest: str = "RIGHT",
    ) -> Any:
        deadline = None if not timeout else anyio.current_time() + float(timeout)
        while True:
            moved = await self.lmove(first_list, second_list, src, dest)
            if moved is not None or (deadline is not None and anyio.current_time() >= deadline):
                return moved
            await anyio.sleep(_POLL_S)

    async def xread(  # type: ignore[override]  # same call shape, polls instead of blocking
        self, streams: Any, count: int | None = None, block: int | None = None, **kwargs: Any
    ) -> Any:
        deadline = None if not block else anyio.current_time() + block / 1000
        while True:
            reply = await super().xread(streams, count=count, **kwargs)
            if (
                reply
                or block is None
                or (deadline is not None and anyio.current_time() >= deadline)
            ):
                return reply
            await anyio.sleep(_POLL_S)


@contextmanager
def serve_fake_redis(host: str, port: int) -> Iterator[tuple[fakeredis.FakeServer, str]]:
    """fakeredis's TCP server on `host:port` (0: any free port), serving in a thread.

    Yields the in-process server (for `BlockingFakeRedis(server=...)`, which shares its data)
    and the `redis://` URL the CLI and producer scripts can use while the demo runs.
    """
    try:
        tcp = fakeredis.TcpFakeServer((host, port), server_type="redis")
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(f"demo Redis: port {port} on {host} is already in use",
                                 port=port) from None  # fmt: skip
        raise StartupError(f"demo Redis: cannot listen on {host}:{port}: {exc.strerror}") from None
    # A client still connected at exit must not keep the process alive.
    tcp.daemon_threads = True
    thread = threading.Thread(target=tcp.serve_forever, name="demo-redis", daemon=True)
    thread.start()
    bound = tcp.server_address[1]
    try:
        yield tcp.fake_server, f"redis://{host}:{bound}/0"
    finally:
        tcp.shutdown()
        tcp.server_close()
        thread.join(timeout=5)
