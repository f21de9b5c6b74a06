"""serve_asgi closes connections that never finish sending a request's headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import pytest

from twitstack.core.http_server import serve_asgi

_DEADLINE_S = 0.5


async def _app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await anyio.sleep(_DEADLINE_S * 3)  # longer than the header deadline: must not matter
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@asynccontextmanager
async def _served() -> AsyncIterator[int]:
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            partial(
                serve_asgi, _app, host="127.0.0.1", port=0, name="t", header_timeout_s=_DEADLINE_S
            )
        )
        yield port
        tg.cancel_scope.cancel()


async def _closed_by_server(stream: anyio.abc.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection (bounded by fail_after)."""
    received = b""
    with anyio.fail_after(10):
        while True:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return received


@pytest.mark.anyio
@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: x\r\n"], ids=["idle", "partial"])
async def test_a_connection_without_complete_headers_is_closed(sent: bytes) -> None:
    """A socket that sends nothing, or half a request, is closed instead of held forever."""
    async with _served() as port:
        stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            if sent:
                await stream.send(sent)
            assert await _closed_by_server(stream) == b""


@pytest.mark.anyio
async def test_a_keep_alive_connection_trickling_its_next_request_is_closed() -> None:
    """After one answered request, a second request's headers get the same deadline."""
    async with _served() as port:
        stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            await stream.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            with anyio.fail_after(10):
                first = await stream.receive()
            assert first.startswith(b"HTTP/1.1 200")
            await stream.send(b"GET / HTTP/1.1\r\n")  # its first bytes cancel keep-alive
            assert await _closed_by_server(stream) == b""


@pytest.mark.anyio
async def test_the_deadline_covers_headers_not_the_apps_work() -> None:
    """A request whose headers arrived in time is answered however long the app takes."""
    async with _served() as port:
        stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            await stream.send(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = await _closed_by_server(stream)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"\r\nok\r\n" in answer  # chunked body
