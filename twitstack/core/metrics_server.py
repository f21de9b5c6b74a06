"""The writer's, scraper's and notifier's metrics port: /metrics over a small asyncio server.

These ports serve one route, so they do without uvicorn and Starlette (about 3 MiB resident in
a writer that would otherwise never load them): h11, which httpx already loads, parses the
requests. The responses are the ones uvicorn and a one-route Starlette app gave: 200 with the
registry for GET and HEAD /metrics, 307 from /metrics/ to /metrics, 404 for any other path,
405 for any other method, 400 for a request that is not HTTP; keep-alive as uvicorn keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
from email.utils import formatdate
from http import HTTPStatus

import anyio
import h11
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from twitstack.core.listen import bind_socket
from twitstack.core.logging import get_logger

log = get_logger(__name__)

HEADER_TIMEOUT_S = 10.0  # how long a connection may take to send a request's headers
KEEP_ALIVE_S = 5.0  # how long an idle connection stays open after a response (uvicorn's default)
_GRACEFUL_S = 2.0  # how long responses being written may finish once the server is told to stop
_MAX_REQUEST_BYTES = 64 * 1024  # headers and body; a scrape sends a few hundred bytes
_READ_BYTES = 16 * 1024
_TEXT = b"text/plain; charset=utf-8"
_INVALID = b"Invalid HTTP request received."

Headers = list[tuple[bytes, bytes]]


def _date() -> bytes:
    return formatdate(usegmt=True).encode()


def _reason(status: int) -> bytes:
    return HTTPStatus(status).phrase.encode()


class _Connection:
    """One client connection: requests read with h11, answered one at a time."""

    def __init__(
        self,
        registry: CollectorRegistry,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        header_timeout_s: float,
    ) -> None:
        self._registry = registry
        self._reader = reader
        self._writer = writer
        self._header_timeout_s = header_timeout_s
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST_BYTES)
        self.idle = True  # waiting for a request: may be closed at once when the server stops

    async def serve(self) -> None:
        first = True
        try:
            while True:
                self.idle = True
                request = await self._read_request(first)
                if request is None:
                    return
                self.idle = False
                first = False
                self._respond(request)
                await self._writer.drain()
                if self._h11.our_state is not h11.DONE or self._h11.their_state is not h11.DONE:
                    return  # h11 says the connection must close (HTTP/1.0, Connection: close)
                self._h11.start_next_cycle()
        except h11.RemoteProtocolError:
            log.warning("metrics.invalid_request")  # as uvicorn logged it
            self._send_400()
        except (ConnectionError, TimeoutError, h11.LocalProtocolError):
            pass
        finally:
            self._writer.close()

    async def _read_request(self, first: bool) -> h11.Request | None:
        """The next complete request (its body read and dropped), or None to close quietly.

        Its headers must be complete `header_timeout_s` after the connection opened or the
        previous response; after a response, the next request's first byte must come within
        `KEEP_ALIVE_S`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._header_timeout_s
        first_byte_by = None if first else loop.time() + KEEP_ALIVE_S
        request: h11.Request | None = None
        received = 0
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                if request is not None:  # a body: each read gets the header timeout
                    timeout = self._header_timeout_s
                else:
                    until = deadline if first_byte_by is None else min(deadline, first_byte_by)
                    timeout = until - loop.time()
                    if timeout <= 0:
                        return None
                try:
                    data = await asyncio.wait_for(self._reader.read(_READ_BYTES), timeout)
                except TimeoutError:
                    return None
                first_byte_by = None
                received += len(data)
                if received > _MAX_REQUEST_BYTES:
                    raise h11.RemoteProtocolError("request too large")
                self._h11.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage):
                return request
            elif isinstance(event, h11.ConnectionClosed):
                return None
            # h11.Data (a body nobody reads) is dropped

    def _respond(self, request: h11.Request) -> None:
        path, _, query = request.target.partition(b"?")
        headers: Headers
        body = b""
        if path == b"/metrics":
            if request.method in (b"GET", b"HEAD"):
                body = generate_latest(self._registry)
                content_type = CONTENT_TYPE_LATEST.encode()
                headers = [(b"content-length", b"%d" % len(body)), (b"content-type", content_type)]
                status = 200
            else:
                body = b"Method Not Allowed"
                headers = [(b"allow", b"HEAD, GET"), *self._text_headers(body)]
                status = 405
        elif path == b"/metrics/":
            # Starlette's redirect_slashes, which the one-route app had.
            host = dict(request.headers).get(b"host", b"")
            location = b"http://" + host + b"/metrics" + (b"?" + query if query else b"")
            headers = [(b"content-length", b"0"), (b"location", location)]
            status = 307
        else:
            body = b"Not Found"
            headers = self._text_headers(body)
            status = 404
        send = self._h11.send
        response = h11.Response(
            status_code=status, headers=[(b"date", _date()), *headers], reason=_reason(status)
        )
        data = send(response) or b""
        if request.method != b"HEAD" and body:
            data += send(h11.Data(data=body)) or b""
        data += send(h11.EndOfMessage()) or b""
        self._writer.write(data)

    @staticmethod
    def _text_headers(body: bytes) -> Headers:
        return [(b"content-length", b"%d" % len(body)), (b"content-type", _TEXT)]

    def _send_400(self) -> None:
        if self._h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
            self._writer.write(
                (self._h11.send(
                    h11.Response(
                        status_code=400,
                        headers=[(b"content-type", _TEXT), (b"connection", b"close")],
                        reason=_reason(400),
                    )
                ) or b"")
                + (self._h11.send(h11.Data(data=_INVALID)) or b"")
                + (self._h11.send(h11.EndOfMessage()) or b"")
            )  # fmt: skip


async def serve_metrics(
    registry: CollectorRegistry,
    *,
    host: str,
    port: int,
    name: str,
    header_timeout_s: float = HEADER_TIMEOUT_S,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `registry` at /metrics until cancelled; report the bound port once listening.

    A connection that has not sent a request's headers `header_timeout_s` after it opened is
    closed, as is one idle for `KEEP_ALIVE_S` after a response. Cancellation stops accepting,
    closes idle connections and lets responses being written finish for a moment.
    """
    sock = bind_socket(host, port, name=name)
    connections: dict[asyncio.Task[None], _Connection] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(registry, reader, writer, header_timeout_s)
        task = asyncio.current_task()
        assert task is not None
        connections[task] = connection
        try:
            await connection.serve()
        finally:
            del connections[task]

    try:
        server = await asyncio.start_server(handle, sock=sock)
    except BaseException:
        sock.close()
        raise
    try:
        task_status.started(sock.getsockname()[1])
        await anyio.sleep_forever()
    finally:
        server.close()
        with anyio.CancelScope(shield=True):
            for task, connection in list(connections.items()):
                if connection.idle:
                    task.cancel()
            if connections:
                await asyncio.wait(list(connections), timeout=_GRACEFUL_S)
            for task in list(connections):
                task.cancel()
