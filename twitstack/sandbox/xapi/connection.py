"""Dropping a client's TCP connection mid-request, the way a crashing server or a proxy would."""

from __future__ import annotations

import socket
import struct
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

_RAW_SEND = "twitstack.sandbox.raw_send"
_RAW_RECEIVE = "twitstack.sandbox.raw_receive"
_DISCONNECT_WAIT_S = 1.0


class SandboxConnectionReset(ConnectionResetError):
    """Raised to an in-process (ASGI transport) client where no socket exists to reset."""


def keep_server_channel(app: ASGIApp) -> ASGIApp:
    """Wrap `app` so responses can reach the server's own send/receive past Starlette's."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        scope[_RAW_SEND] = send
        scope[_RAW_RECEIVE] = receive
        await app(scope, receive, send)

    return wrapped


def _server_transport(send: Any) -> Any:
    # uvicorn hands the app its RequestResponseCycle's bound `send`; the cycle holds the
    # asyncio transport. ASGI has no portable way to abort a connection, so this reaches in.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    return transport if hasattr(transport, "abort") else None


class ConnectionResetResponse(Response):
    """Sends nothing: the TCP connection is aborted with an RST (SO_LINGER 0).

    Under uvicorn the client sees a reset before any byte of the response. Under an in-process
    ASGI transport there is no connection, so `SandboxConnectionReset` is raised instead.
    """

    def __init__(self) -> None:
        super().__init__(status_code=599)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_send = scope.get(_RAW_SEND, send)
        raw_receive = scope.get(_RAW_RECEIVE, receive)
        transport = _server_transport(raw_send)
        if transport is None:
            raise SandboxConnectionReset("the sandbox dropped the connection (fault injection)")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0 turns the close into an RST rather than an orderly FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        # Wait for the server to notice, so it does not try to answer the dead connection.
        with anyio.move_on_after(_DISCONNECT_WAIT_S):
            for _ in range(100):
                if (await raw_receive())["type"] == "http.disconnect":
                    break
