"""Faults aimed at the lean transport's own machinery (its flow control, its connection reuse,
its closing), each compared with httpx's default transport where that one gets it right."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.notifier.tls import make_ca
from tests.writer.lean_http_server import Conn, response, scripted_server
from tests.writer.test_lean_transport import CREATED, answer_all, default_client, lean_client

pytestmark = pytest.mark.anyio


async def post_status(client: httpx.AsyncClient, url: str, **kwargs: object) -> object:
    try:
        reply = await client.post(url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        return ("error", type(exc).__name__)
    return ("response", reply.status_code, reply.content, reply.http_version, reply.reason_phrase)


async def three_chunks() -> AsyncIterator[bytes]:
    for piece in (b"a" * 10, b"b" * 100_000, b"c" * 10):
        yield piece


async def test_a_streamed_body_over_tls_is_written_without_waiting_for_an_answer(
    tmp_path: Path,
) -> None:
    """A multipart upload is written in several pieces; over TLS each piece after the first
    must not wait for the server (which answers only once it has the whole body)."""
    ca = make_ca(tmp_path / "ca")
    timeout = httpx.Timeout(5.0, write=0.5)
    outcomes = []
    for make_client in (default_client, lean_client):
        trust = ssl.create_default_context(cafile=str(ca.ca_file))
        async with (
            scripted_server(answer_all, tls=ca.server_context()) as server,
            make_client(trust) as client,
        ):
            url = f"https://127.0.0.1:{server.port}/2/media/upload"
            outcomes.append(
                [
                    await post_status(client, url, content=three_chunks(), timeout=timeout),
                    await post_status(
                        client, url, files={"media": b"m" * 300_000}, timeout=timeout
                    ),
                ]
            )
    assert outcomes == [[CREATED] * 2] * 2


async def test_a_tls_request_after_an_answer_in_two_records_waits_only_for_its_answer(
    tmp_path: Path,
) -> None:
    """Each answer arrives in two TLS records (read one at a time); no request's write may
    wait for the server's answer, which comes later than the write timeout."""
    ca = make_ca(tmp_path / "ca")

    async def slow_answer_in_two_records(conn: Conn) -> None:
        while True:
            await conn.read_request()
            await asyncio.sleep(0.6)  # longer than the write timeout below
            reply = response(201, reason="Created")
            for piece in (reply[:10], reply[10:]):
                conn.send(piece)
                await conn.writer.drain()
                await asyncio.sleep(0.05)

    timeout = httpx.Timeout(5.0, write=0.3)
    outcomes = []
    for make_client in (default_client, lean_client):
        trust = ssl.create_default_context(cafile=str(ca.ca_file))
        async with (
            scripted_server(slow_answer_in_two_records, tls=ca.server_context()) as server,
            make_client(trust) as client,
        ):
            url = f"https://127.0.0.1:{server.port}/2/tweets"
            outcomes.append(
                ([await post_status(client, url, json={}, timeout=timeout) for _ in range(3)],
                 server.connections)
            )  # fmt: skip
    assert outcomes == [([CREATED] * 3, 1)] * 2
