"""Local receivers for notifier tests: a webhook endpoint that checks signatures, an SMTP sink."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import default
from typing import Any

import anyio
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import free_port
from twitstack.core.http_server import serve_asgi
from twitstack.notifier.signing import DELIVERY_HEADER, SIGNATURE_HEADER, verify


@dataclass
class Hit:
    """One request the receiver answered."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int


@dataclass
class WebhookReceiver:
    """Answers `statuses` in turn (then 200); a webhook hit with a bad signature gets 401."""

    key: str
    port: int = field(default_factory=free_port)
    statuses: list[int] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    flood: bool = False  # answer 200 with a body of 1 GiB, streamed as fast as it is read

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def delivered(self, path: str = "/hook") -> list[Hit]:
        """Hits answered 2xx on `path`, each delivery id once (repeats are at-least-once)."""
        seen: dict[str, Hit] = {}
        for hit in self.hits:
            if hit.path == path and hit.status < 300:
                seen.setdefault(hit.headers.get(DELIVERY_HEADER.lower(), str(len(seen))), hit)
        return list(seen.values())

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        header = request.headers.get(SIGNATURE_HEADER, "")
        if request.url.path == "/hook" and not verify(self.key, header, body, now=time.time()):
            self.refused.append(header)
            return Response("bad signature", status_code=401)
        status = self.statuses.pop(0) if self.statuses else 200
        self.hits.append(Hit(request.url.path, json.loads(body), dict(request.headers), status))
        if self.flood:
            return StreamingResponse(_flood(), status_code=status)
        return Response("ok" if status < 300 else "no", status_code=status)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._hook, methods=["POST"])])

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[WebhookReceiver]:
        """Listen on `port` until the block ends (then the port refuses connections)."""
        async with anyio.create_task_group() as tg:
            await tg.start(lambda task_status: serve_asgi(
                self.app(), host="127.0.0.1", port=self.port, name="test receiver",
                task_status=task_status,
            ))  # fmt: skip
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()


async def _flood() -> AsyncIterator[bytes]:
    chunk = b"x" * 65_536
    for _ in range(16_384):
        yield chunk


class _Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                message_from_bytes(envelope.content, policy=default),
            )
        )
        return "250 OK"


@contextmanager
def smtp_sink(
    port: int | None = None,
    *,
    tls: ssl.SSLContext | None = None,
    starttls: ssl.SSLContext | None = None,
) -> Iterator[tuple[int, _Sink]]:
    """An aiosmtpd server on loopback that keeps every message it is given.

    `tls`: TLS from the first byte (port 465 style); `starttls`: plain until STARTTLS, which
    the server then requires before MAIL.
    """
    sink = _Sink()
    smtp_options: dict[str, Any] = {}
    if starttls is not None:
        smtp_options = {"tls_context": starttls, "require_starttls": True}
    controller = Controller(sink, hostname="127.0.0.1", port=port or free_port(),
                            ssl_context=tls, **smtp_options)  # fmt: skip
    controller.start()
    try:
        yield controller.port, sink
    finally:
        controller.stop()


class DripSmtpServer:
    """An SMTP server gone bad: its greeting arrives one byte every 0.2 s and never ends, so no
    socket timeout fires. `closed` counts connections the client gave up (closed) on."""

    def __init__(self, *, max_bytes: int = 300) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.closed = 0
        self._max_bytes = max_bytes
        self._stop = threading.Event()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            for _ in range(self._max_bytes):  # bounded: 60 s at most
                if self._stop.wait(0.2):
                    return
                try:
                    conn.sendall(b"2" if _ == 0 else b"0")
                except OSError:
                    self.closed += 1
                    return

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @contextmanager
    def serving(self) -> Iterator[DripSmtpServer]:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=5)
            self._listener.close()


async def wait_until(condition: Callable[[], bool], *, timeout_s: float = 20) -> None:
    """Return once `condition()` holds; fail after `timeout_s`."""
    with anyio.fail_after(timeout_s):
        while not condition():  # noqa: ASYNC110  # polls state held elsewhere
            await anyio.sleep(0.02)


async def wait_until_async(
    condition: Callable[[], Awaitable[bool]], *, timeout_s: float = 20
) -> None:
    """Return once `await condition()` holds; fail after `timeout_s`."""
    with anyio.fail_after(timeout_s):
        while not await condition():  # noqa: ASYNC110  # polls Redis
            await anyio.sleep(0.02)
