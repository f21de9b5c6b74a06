"""A scripted HTTP/1.1 server on loopback for transport fault tests: each connection runs a script.

A script gets the connection's stream pair and its index, reads requests with `read_request`
(the raw bytes, kept in `requests`) and answers, stalls, closes or resets as the fault needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

Script = Callable[["Conn"], Awaitable[None]]
_HEAD_END = b"\r\n\r\n"
_MAX_REQUEST = 8 * 1024 * 1024


@dataclass
class Conn:
    """One accepted connection, as a script sees it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    index: int
    server: ScriptedServer

    async def read_request(self) -> bytes:
        """One whole request (head and body, Content-Length or chunked), as it arrived."""
        head = await self.reader.readuntil(_HEAD_END)
        lower = head.lower()
        body = b""
        if b"transfer-encoding: chunked" in lower:
            while True:
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                body += size_line + await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            for line in lower.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
                    assert length <= _MAX_REQUEST
                    body = await self.reader.readexactly(length)
        raw = head + body
        self.server.requests.append(raw)
        return raw

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0), not a FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    def close(self) -> None:
        self.writer.close()

    async def until_client_closes(self) -> None:
        """Hold the connection open (a stall) until the client gives up on it."""
        with contextlib.suppress(ConnectionError):
            while await self.reader.read(65536):
                pass


@dataclass
class ScriptedServer:
    """Runs `scripts[i]` on the i-th connection (the last script for any later one)."""

    scripts: list[Script]
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        script = self.scripts[min(index, len(self.scripts) - 1)]
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await script(Conn(reader, writer, index, self))
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            self.closed.set()


@contextlib.asynccontextmanager
async def scripted_server(
    *scripts: Script, tls: ssl.SSLContext | None = None
) -> AsyncIterator[ScriptedServer]:
    """A ScriptedServer listening on 127.0.0.1 (TLS with `tls`), stopped on exit."""
    state = ScriptedServer(list(scripts))
    server = await asyncio.start_server(state._handle, "127.0.0.1", 0, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        # Scripts end once their client closed; cancel only what still runs after a while.
        if state._tasks:
            _, pending = await asyncio.wait(list(state._tasks), timeout=2)
            for task in pending:
                task.cancel()
        await asyncio.wait_for(server.wait_closed(), 5)


def response(
    status: int = 200,
    body: bytes = b'{"data":{"id":"1","text":"t"}}',
    *,
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),),
    version: str = "HTTP/1.1",
    reason: str = "OK",
) -> bytes:
    lines = [f"{version} {status} {reason}", *(f"{k}: {v}" for k, v in headers)]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
