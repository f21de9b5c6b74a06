"""Listening sockets for the daemon's HTTP ports, with one-line errors for the usual failures."""

from __future__ import annotations

import errno
import socket

from twitstack.core.errors import PortInUseError, StartupError


def bind_socket(host: str, port: int, *, name: str) -> socket.socket:
    """Bind a listening TCP socket, turning "address in use" into a one-line error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose protocol says
    # TCP, and without it a response written in two parts stalls ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"{name}: port {port} on {host} is already in use", port=port
            ) from None
        raise StartupError(f"{name}: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock
