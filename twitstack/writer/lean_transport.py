"""A one-connection HTTP/1.1 transport for the writer's workers: httpx's API, less CPU per call.

httpx's default transport (httpcore, anyio, h11) costs several hundred microseconds of CPU per
request in its pool, trace and stream layers. This transport keeps httpx's Client, Request,
Response and exception types, and replaces those layers with one keep-alive connection driven
by an asyncio protocol, framed by h11 (as httpcore frames it).

What decides whether a failed POST may have been posted is which exception it raises, so each
phase raises what httpcore raises in the same situation:

- connecting (DNS, TCP, TLS handshake): ConnectError / ConnectTimeout, and only there, before
  any byte of the request was written;
- writing: a connection lost while writing is not raised (httpcore reads on: a server may
  answer before it read the whole request); a write that cannot drain in time: WriteTimeout;
- reading: ReadTimeout; ReadError when the connection broke (reset); RemoteProtocolError when
  the server closed without (or in the middle of) a response, or sent malformed HTTP.

An idle connection is reused only while the server has not closed it (a readable idle socket
means it did) and its keep-alive time (httpx's 5 s default) has not passed. A response that
was not read to its end, that asks to close (`Connection: close`, HTTP/1.0) or that came with
bytes past its end (httpcore would read those as the next answer), closes it.
It runs on asyncio only; `lean_transport_for` picks httpx's own transport otherwise, and
whenever httpx would use a proxy from the environment.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import time
import urllib.request
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import anyio
import h11
import httpx

KEEPALIVE_EXPIRY_S = 5.0  # httpx.Limits' default keep-alive expiry
_READ_PAUSE_BYTES = 256 * 1024  # stop reading from the socket beyond this much unread data
_MAX_INCOMPLETE_EVENT_SIZE = 100 * 1024  # httpcore's limit on a response head
_SCHEMES = {b"http": 80, b"https": 443}
_DISCONNECTED = "Server disconnected without sending a response."  # httpcore's words
_PROXY_SCHEMES = ("http", "https", "all")
_HAPPY_EYEBALLS_DELAY_S = 0.25  # anyio.connect_tcp's default


class _Expired(Exception):
    """A read or write waited past its timeout."""


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(_Expired())


def _socket_readable(sock: Any) -> bool:
    """True when a read would not block: on an idle connection, the server closed it."""
    if sock is None:
        return True
    try:
        fileno = sock.fileno()
    except OSError:
        return True
    if fileno < 0:
        return True
    poller = select.poll()
    poller.register(fileno, select.POLLIN)
    return bool(poller.poll(0))


class _Link(asyncio.Protocol):
    """One TCP (or TLS) connection as the event loop reports it: data, end, loss."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.drained: asyncio.Future[None] | None = None
        self.tls = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # As anyio's streams do: a write is done once the kernel took all of it. Over TLS the
        # socket's transport keeps that limit (0, set before the handshake), so the TLS layer
        # holds back what the socket has not taken; pausing at 1 byte waits for that. At 0
        # asyncio's TLS pauses at an empty buffer too (its test is >=) and resumes only on
        # its next read or write: a write would wait for the server's answer.
        transport.set_write_buffer_limits(1 if self.tls else 0)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _READ_PAUSE_BYTES and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        # Keep the write side open, as anyio does (asyncio's TLS cannot: it would warn).
        return not self.tls

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.error = exc
        self.paused = False
        self._wake()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class _Connection:
    """One HTTP/1.1 connection to one origin: h11's state over a `_Link`."""

    def __init__(self, origin: tuple[bytes, bytes, int], link: _Link) -> None:
        self.origin = origin
        self.link = link
        assert link.transport is not None
        self.transport: asyncio.Transport = link.transport
        self.h11 = h11.Connection(
            our_role=h11.CLIENT, max_incomplete_event_size=_MAX_INCOMPLETE_EVENT_SIZE
        )
        self.idle_since: float | None = None
        self.closed = False

    def reusable(self, keepalive_expiry: float) -> bool:
        link = self.link
        if self.closed or link.lost or link.eof or link.chunks or self.idle_since is None:
            return False
        if time.monotonic() - self.idle_since > keepalive_expiry:
            return False
        # What the loop has not yet reported: a FIN (or data) already in the socket.
        return not _socket_readable(self.transport.get_extra_info("socket"))

    def close(self) -> None:
        self.closed = True
        # Not close(): that keeps the socket until the server took all that is buffered (for
        # ever, if it reads nothing after a WriteTimeout). anyio's streams (httpcore's) abort
        # too, and send no TLS close_notify either.
        self.transport.abort()

    async def write(self, data: bytes, timeout: float | None) -> bool:
        """Write `data`; False when the connection was lost (httpcore then reads on)."""
        link = self.link
        if link.lost:
            return False
        self.transport.write(data)
        if not link.paused:
            return not link.lost
        loop = asyncio.get_running_loop()
        drained = link.drained = loop.create_future()
        timer = loop.call_later(timeout, _expire, drained) if timeout is not None else None
        try:
            await drained
        except _Expired:
            raise httpx.WriteTimeout("timed out writing the request") from None
        finally:
            link.drained = None
            if timer is not None:
                timer.cancel()
        return not link.lost

    async def read(self, timeout: float | None) -> bytes:
        """The bytes that arrived, b"" at the end of the stream; ReadError if it broke."""
        link = self.link
        if not link.chunks and not link.lost and not link.eof:
            loop = asyncio.get_running_loop()
            waiter = link.waiter = loop.create_future()
            timer = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
            try:
                await waiter
            except _Expired:
                if not link.chunks:
                    raise httpx.ReadTimeout("timed out reading the response") from None
            finally:
                link.waiter = None
                if timer is not None:
                    timer.cancel()
        if link.chunks:
            data = link.chunks.popleft() if len(link.chunks) == 1 else b"".join(link.chunks)
            link.chunks.clear()
            if link.buffered > _READ_PAUSE_BYTES and not link.lost:
                self.transport.resume_reading()
            link.buffered = 0
            return data
        if link.error is not None:  # a reset, before or after the end of the stream
            raise httpx.ReadError(str(link.error) or type(link.error).__name__)
        return b""

    def next_event(self) -> Any:
        try:
            return self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc

    async def receive_event(self, timeout: float | None) -> Any:
        while True:
            event = self.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.read(timeout)
            if data == b"" and self.h11.their_state is h11.SEND_RESPONSE:
                raise httpx.RemoteProtocolError(_DISCONNECTED)
            self.h11.receive_data(data)

    async def send(self, request: httpx.Request, timeouts: dict[str, Any]) -> Any:
        write_timeout = timeouts.get("write")
        try:
            head = self.h11.send(
                h11.Request(
                    method=request.method, target=request.url.raw_path,
                    headers=request.headers.raw,
                )
            )  # fmt: skip
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc
        try:
            content: bytes | None = request.content
        except httpx.RequestNotRead:  # a streamed body (multipart uploads)
            content = None
        if content is not None:
            # One write for head, body and end (httpcore writes them in turn: same bytes).
            parts = [head or b"", self.h11.send(h11.Data(data=content)) or b""]
            parts.append(self.h11.send(h11.EndOfMessage()) or b"")
            await self.write(b"".join(parts), write_timeout)
        elif await self.write(head or b"", write_timeout):
            await self._stream_body(request, write_timeout)
        return await self._response(timeouts.get("read"))

    async def _stream_body(self, request: httpx.Request, timeout: float | None) -> None:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for chunk in request.stream:
            data = self.h11.send(h11.Data(data=chunk))
            if data and not await self.write(data, timeout):
                return  # lost: read what the server said, as httpcore does
        end = self.h11.send(h11.EndOfMessage())
        if end:
            await self.write(end, timeout)

    async def _response(self, timeout: float | None) -> Any:
        """The response head, past any 1xx but a 101 (as httpcore reads it)."""
        while True:
            event = await self.receive_event(timeout)
            if isinstance(event, h11.Response):
                return event
            if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                return event

    def finish(self) -> bool:
        """After a response: keep the connection for the next request, or close it."""
        # Bytes past the end of the answer (after its Content-Length, a 204's body) came in
        # with it and wait in h11: the next request would read them as its answer.
        stray, _ = self.h11.trailing_data
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE and not stray:
            self.h11.start_next_cycle()
            self.idle_since = time.monotonic()
            return True
        self.close()
        return False


class _ResponseStream(httpx.AsyncByteStream):
    """The response body as it arrives; closing it frees the connection for the next request."""

    def __init__(self, owner: LeanTransport, connection: _Connection, timeout: float | None):
        self._owner = owner
        self._connection = connection
        self._timeout = timeout
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        try:
            while True:
                event = await connection.receive_event(self._timeout)
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                    break
        except BaseException:
            connection.close()
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._owner._release(self._connection)


class LeanTransport(httpx.AsyncBaseTransport):
    """One keep-alive HTTP/1.1 connection (to one origin at a time), one request at a time.

    `ssl_context` is the context httpx would use (`httpx.create_ssl_context()`); a second
    request waits for the first's response to be closed, up to the request's pool timeout.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext, *, keepalive_expiry: float = KEEPALIVE_EXPIRY_S
    ) -> None:
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._connection: _Connection | None = None
        self._lock = asyncio.Lock()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme, host = url.raw_scheme, url.raw_host
        default_port = _SCHEMES.get(scheme)
        if default_port is None or not host:
            raise httpx.UnsupportedProtocol(f"Request URL {str(url)!r} is not http(s)")
        origin = (scheme, host, url.port or default_port)
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        await self._acquire(timeouts.get("pool"))
        try:
            connection = self._connection
            if connection is not None and (
                connection.origin != origin or not connection.reusable(self._keepalive_expiry)
            ):
                connection.close()
                connection = None
            if connection is None:
                self._connection = None
                sni = request.extensions.get("sni_hostname")
                connection = self._connection = await self._connect(origin, timeouts, sni)
            try:
                head = await connection.send(request, timeouts)
            except BaseException:
                connection.close()
                raise
        except BaseException:
            self._lock.release()
            raise
        return httpx.Response(
            head.status_code,
            headers=head.headers.raw_items(),
            stream=_ResponseStream(self, connection, timeouts.get("read")),
            extensions={"http_version": b"HTTP/" + head.http_version, "reason_phrase": head.reason},
        )

    async def _acquire(self, timeout: float | None) -> None:
        if not self._lock.locked():
            await self._lock.acquire()
            return
        try:
            with anyio.fail_after(timeout):
                await self._lock.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("timed out waiting for the connection") from None

    def _release(self, connection: _Connection) -> None:
        if not connection.closed:
            connection.finish()
        self._lock.release()

    async def _connect(
        self, origin: tuple[bytes, bytes, int], timeouts: dict[str, Any], sni: str | None
    ) -> _Connection:
        scheme, raw_host, port = origin
        host = raw_host.decode("ascii")
        timeout = timeouts.get("connect")
        loop = asyncio.get_running_loop()
        link = _Link()
        transport: asyncio.BaseTransport | None = None
        try:
            with anyio.fail_after(timeout):
                # Happy eyeballs as anyio's connect_tcp (httpcore's) does: a host whose first
                # address (IPv6, say) hangs is tried on the next after 250 ms.
                transport, _ = await loop.create_connection(
                    lambda: link, host, port, happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY_S
                )
            if scheme == b"https":
                context = self._ssl_context
                context.set_alpn_protocols(["http/1.1"])  # as httpcore offers without HTTP/2
                with anyio.fail_after(timeout):
                    tls = await loop.start_tls(
                        transport, link, context, server_hostname=sni or host,
                        ssl_handshake_timeout=None if timeout is None else timeout + 1.0,
                    )  # fmt: skip
                if tls is None:
                    raise ConnectionAbortedError("connection closed during the TLS handshake")
                transport = tls
                link.tls = True
                link.connection_made(tls)  # start_tls hands the protocol the TLS transport
        except TimeoutError:
            if transport is not None:
                transport.close()
            raise httpx.ConnectTimeout("timed out connecting") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            if transport is not None:
                transport.close()
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        except BaseException:
            if transport is not None:
                transport.close()
            raise
        return _Connection(origin, link)

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def env_proxy_configured() -> bool:
    """True when the environment names a proxy httpx (trust_env) could use for some URL."""
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in _PROXY_SCHEMES)


def lean_transport_for(ssl_context: ssl.SSLContext) -> LeanTransport | None:
    """The lean transport, or None where httpx's own must be used.

    None off asyncio (anyio may run the daemon on trio) and whenever the environment names a
    proxy: httpx would route through it (NO_PROXY decides per host), so the lean transport
    never takes a call that would have gone through a proxy.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    if env_proxy_configured():
        return None
    return LeanTransport(ssl_context)


__all__ = ["KEEPALIVE_EXPIRY_S", "LeanTransport", "env_proxy_configured", "lean_transport_for"]
