"""Serve an ASGI app on a port inside the daemon's task group: the only uvicorn import."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator
from typing import Any

import anyio
import uvicorn
from anyio.abc import TaskStatus
from uvicorn.protocols.http.h11_impl import H11Protocol

from twitstack.core.errors import StartupError
from twitstack.core.listen import bind_socket

_STARTUP_POLL_S = 0.01  # uvicorn offers no "started" event, only a flag
_GRACEFUL_S = 2  # how long open HTTP requests may finish once the server is told to stop
HEADER_TIMEOUT_S = 10.0  # how long a connection may take to send a request's headers


class _HeaderDeadlineProtocol(H11Protocol):
    """h11 with a deadline for each request's headers.

    uvicorn times out idle keep-alive connections but not a connection that never sends a
    byte, nor one that trickles its headers (the first byte cancels the keep-alive timer):
    a few hundred such sockets would hold the UI's port without ever reaching the app.
    """

    header_timeout_s = HEADER_TIMEOUT_S
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm_header_deadline()  # a request's headers arrived: the app has it now

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request may already have started the next cycle inside the call above.
        if self.cycle is None or self.cycle.response_complete:
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        if not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the supervisor."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn would install SIGINT/SIGTERM handlers and swallow the daemon's shutdown.
        yield


async def serve_asgi(
    app: Any,
    *,
    host: str,
    port: int,
    name: str,
    header_timeout_s: float = HEADER_TIMEOUT_S,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` until cancelled; report the bound port (useful with port 0) once listening.

    Cancellation is graceful: uvicorn is asked to exit and given a few seconds to finish
    open requests before it is cancelled too. A connection that has not sent a request's
    headers `header_timeout_s` after it opened (or after its previous response) is closed.
    """
    sock = bind_socket(host, port, name=name)
    protocol = type(
        "HeaderDeadlineProtocol", (_HeaderDeadlineProtocol,), {"header_timeout_s": header_timeout_s}
    )
    config = uvicorn.Config(
        app,
        http=protocol,
        log_config=None,  # logging is configured once, by twitstack
        access_log=False,
        lifespan="auto",
        timeout_graceful_shutdown=_GRACEFUL_S,
        server_header=False,
        # uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 and hand the app a
        # client address any local process can choose; apps that sit behind a proxy decide
        # whom to trust themselves (moderation's `trusted_proxies`).
        proxy_headers=False,
    )
    server = _EmbeddedServer(config)
    bound_port: int = sock.getsockname()[1]
    done = anyio.Event()
    serve_scope = anyio.CancelScope(shield=True)

    async def serve() -> None:
        # Shielded so that cancelling the caller lets uvicorn drain instead of dying mid-request.
        try:
            with serve_scope:
                await server.serve([sock])
        finally:
            done.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            while not server.started:
                if done.is_set():
                    raise StartupError(f"{name}: the HTTP server on {host}:{bound_port} failed")
                await anyio.sleep(_STARTUP_POLL_S)
            task_status.started(bound_port)
            try:
                await done.wait()
            finally:
                server.should_exit = True
                with anyio.move_on_after(_GRACEFUL_S + 1, shield=True):
                    await done.wait()
                serve_scope.cancel()
    finally:
        sock.close()
