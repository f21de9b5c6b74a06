"""The metrics port of the writer, scraper and notifier: uvicorn's answers, and its deadlines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from twitstack.core import metrics_server
from twitstack.core.metrics_server import serve_metrics

_DEADLINE_S = 0.5


@asynccontextmanager
async def _served() -> AsyncIterator[int]:
    registry = CollectorRegistry()
    Counter("test_answers_total", "Answers.", registry=registry).inc(3)
    async with anyio.create_task_group() as tg:
        serve = partial(
            serve_metrics, registry, host="127.0.0.1", port=0, name="t",
            header_timeout_s=_DEADLINE_S,
        )  # fmt: skip
        yield await tg.start(serve)
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


async def _exchange(port: int, request: bytes) -> tuple[list[bytes], bytes]:
    """(status line and header lines, body) of the answer to one request on a new connection."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request)
        answer = await _closed_by_server(stream)
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def _close(request_line: bytes, *headers: bytes) -> bytes:
    return b"\r\n".join([request_line, b"Host: x", *headers, b"Connection: close", b"", b""])


@pytest.mark.anyio
async def test_get_and_head_metrics() -> None:
    async with _served() as port:
        head, body = await _exchange(port, _close(b"GET /metrics HTTP/1.1"))
        head_only, no_body = await _exchange(port, _close(b"HEAD /metrics HTTP/1.1"))
    assert head[0] == b"HTTP/1.1 200 OK"
    assert b"content-type: " + CONTENT_TYPE_LATEST.encode() in head
    assert b"test_answers_total 3.0\n" in body
    assert b"content-length: %d" % len(body) in head
    assert any(line.startswith(b"date: ") for line in head)
    assert head_only[0] == b"HTTP/1.1 200 OK"
    assert no_body == b""


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("request_line", "status", "headers", "body"),
    [
        (b"GET / HTTP/1.1", b"404 Not Found", [b"content-length: 9"], b"Not Found"),
        (b"GET /healthz HTTP/1.1", b"404 Not Found", [], b"Not Found"),
        (b"DELETE /metrics HTTP/1.1", b"405 Method Not Allowed", [b"allow: HEAD, GET"],
         b"Method Not Allowed"),
        (b"GET /metrics/?a=1 HTTP/1.1", b"307 Temporary Redirect",
         [b"location: http://x/metrics?a=1", b"content-length: 0"], b""),
    ],
)  # fmt: skip
async def test_other_paths_and_methods(
    request_line: bytes, status: bytes, headers: list[bytes], body: bytes
) -> None:
    async with _served() as port:
        head, received = await _exchange(port, _close(request_line))
    assert head[0] == b"HTTP/1.1 " + status
    assert set(headers) <= set(head)
    assert received == body


@pytest.mark.anyio
async def test_a_request_with_a_body_is_answered_and_the_connection_kept() -> None:
    async with _served() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
        await stream.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await _closed_by_server(stream)
    assert answer.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    assert b"Method Not AllowedHTTP/1.1 200 OK\r\n" in answer  # the second, pipelined


@pytest.mark.anyio
async def test_http_1_0_is_answered_and_closed() -> None:
    async with _served() as port:
        head, body = await _exchange(port, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert head[0] == b"HTTP/1.1 200 OK"
    assert b"Connection: close" in head
    assert b"test_answers_total 3.0\n" in body


@pytest.mark.anyio
async def test_garbage_gets_400_and_the_connection_closed() -> None:
    async with _served() as port:
        head, body = await _exchange(port, b"GARBAGE\r\n\r\n")
    assert head[0] == b"HTTP/1.1 400 Bad Request"
    assert body == b"Invalid HTTP request received."


@pytest.mark.anyio
@pytest.mark.parametrize(
    "sent", [b"", b"GET /metrics HTTP/1.1\r\nHost: x\r\n"], ids=["idle", "partial"]
)
async def test_a_connection_without_complete_headers_is_closed(sent: bytes) -> None:
    async with _served() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        if sent:
            await stream.send(sent)
        assert await _closed_by_server(stream) == b""


@pytest.mark.anyio
async def test_a_keep_alive_connection_trickling_its_next_request_is_closed() -> None:
    async with _served() as port, await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        with anyio.fail_after(10):
            first = await stream.receive()
        assert first.startswith(b"HTTP/1.1 200")
        await stream.send(b"GET /metrics HTTP/1.1\r\n")
        assert await _closed_by_server(stream) == b""


@pytest.mark.anyio
async def test_stopping_closes_keep_alive_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cancelling the server closes a client's open connection: it does not wait it out."""
    monkeypatch.setattr(metrics_server, "KEEP_ALIVE_S", 3600.0)
    registry = CollectorRegistry()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            serve = partial(
                serve_metrics, registry, host="127.0.0.1", port=0, name="t",
                header_timeout_s=3600.0,
            )  # fmt: skip
            port = await tg.start(serve)
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await stream.receive()).startswith(b"HTTP/1.1 200")
            tg.cancel_scope.cancel()
        async with stream:
            assert await _closed_by_server(stream) == b""
