"""Request bodies are bounded before they are read; hostile JSON is a 4xx, never a 500."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.moderation.harness import Harness
from tests.moderation.live import serve_live
from twitstack.moderation.api import MAX_BODY_BYTES
from twitstack.moderation.roles import Role

pytestmark = pytest.mark.anyio


async def test_anonymous_token_route_refuses_a_large_declared_body(mod: Harness) -> None:
    limit = mod.deps.settings.max_anonymous_body_bytes
    async with mod.client() as client:
        response = await client.post("/api/auth/token", content=b"{" + b" " * limit + b"}")
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body too large: at most {limit} bytes"}


async def test_login_refuses_a_large_body(mod: Harness) -> None:
    async with mod.client() as client:
        response = await client.post(
            "/login", data={"username": "x" * 20_000, "password": "y", "csrf_token": "z"}
        )
    assert response.status_code == 413
    assert "request body too large" in response.text


async def test_a_chunked_body_is_cut_off_while_it_is_read(mod: Harness) -> None:
    """Without Content-Length the bytes are counted as they arrive."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(1000):
            yield b" " * 4096

    async with mod.client() as client:
        response = await client.post("/api/auth/token", content=chunks())
    assert response.status_code == 413
    assert "content-length" not in {k.lower() for k in response.request.headers}


async def test_authenticated_routes_are_bounded_too(mod: Harness) -> None:
    await mod.add_user("ann", Role.AUTHOR)
    token = await mod.bearer("ann", ("write",))
    limit = mod.deps.settings.max_body_bytes
    async with mod.client() as client:
        response = await client.post(
            "/api/requests",
            content=b'{"text": "' + b"a" * limit + b'"}',
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )
    assert response.status_code == 413


@pytest.mark.parametrize("depth", [40, 5_000, 100_000])
async def test_deeply_nested_json_is_a_400(mod: Harness, depth: int) -> None:
    await mod.add_user("ann", Role.AUTHOR)
    token = await mod.bearer("ann", ("write",))
    nested = b"[" * depth + b"]" * depth
    async with mod.client() as client:
        exchange = await client.post("/api/auth/token", content=nested[:8000])
        create = await client.post(
            "/api/requests",
            content=b'{"action": "tweet", "payload": ' + nested + b"}",
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )
    assert exchange.status_code == 400
    assert create.status_code in (400, 413)
    if len(nested) < MAX_BODY_BYTES:
        assert create.status_code == 400
        assert "nested deeper than" in create.json()["detail"]


def _no_users(_: Harness) -> Any:
    async def setup() -> dict[str, Any]:
        return {}

    return setup()


def test_a_huge_declared_body_is_refused_before_any_of_it_is_sent(
    redis_url: str, tmp_path: Path
) -> None:
    """The 413 comes back while the client has sent only headers (nothing is buffered)."""
    with serve_live(redis_url, tmp_path, _no_users) as live:
        port = int(live.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /api/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
            )
            reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")
