"""Faults aimed at the lean transport's own machinery (its flow control, its connection reuse,
its closing), each compared with httpx's default transport where that one gets it right."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.notifier.tls import make_ca
from tests.writer.lean_http_server import Conn, Script, response, scripted_server
from tests.writer.test_lean_transport import CREATED, answer_all, default_client, lean_client
from twitstack.writer.lean_transport import _Connection
from twitstack.writer.outcome import OutcomeKind, classify

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


STRAY_ANSWER = response(200, b'{"data":{"id":"999","text":"someone else\'s"}}')


async def extra_bytes_after_the_body(conn: Conn) -> None:
    await conn.read_request()
    conn.send(response(201, reason="Created") + STRAY_ANSWER)  # one write: one read
    await answer_all(conn)


async def a_body_on_a_no_content_answer(conn: Conn) -> None:
    await conn.read_request()
    conn.send(
        b"HTTP/1.1 204 No Content\r\nContent-Length: %d\r\n\r\n" % len(STRAY_ANSWER) + STRAY_ANSWER
    )
    await answer_all(conn)


@pytest.mark.parametrize("script", [extra_bytes_after_the_body, a_body_on_a_no_content_answer])
async def test_bytes_past_the_end_of_an_answer_are_never_the_next_answer(script: Script) -> None:
    """What the server sent past the end of an answer (framed by Content-Length, or a 204's
    body) arrived with it; the next request must not take it as its answer: the connection
    is closed. (httpx's default transport reuses it and reads the stray answer.)"""
    async with scripted_server(script, answer_all) as server, lean_client() as client:
        url = f"http://127.0.0.1:{server.port}/2/tweets"
        await post_status(client, url, json={})
        second = await post_status(client, url, json={})
    assert second == CREATED
    assert server.connections == 2


def open_sockets_to(port: int) -> int:
    """This process's open TCP sockets whose peer is 127.0.0.1:`port` (Linux /proc)."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == port and fields[9] in inodes:
            count += 1
    return count


async def test_a_write_timeout_releases_the_socket_and_its_unsent_body() -> None:
    """The server reads nothing: after the WriteTimeout the socket is closed at once, the
    body left in the transport's buffer dropped (as httpx's transport does), not kept until
    the server reads or closes."""

    async def never_read(conn: Conn) -> None:
        conn.writer.transport.pause_reading()
        await conn.server.closed.wait()

    results = []
    for make_client in (default_client, lean_client):
        async with scripted_server(never_read) as server, make_client() as client:
            outcome = await post_status(
                client, f"http://127.0.0.1:{server.port}/", content=b"x" * (64 * 1024 * 1024),
                timeout=httpx.Timeout(2.0, write=0.3),
            )  # fmt: skip
            for _ in range(5):  # a close completes on the loop's next iterations
                await asyncio.sleep(0)
            results.append((outcome, open_sockets_to(server.port)))
            server.closed.set()
    assert results == [(("error", "WriteTimeout"), 0)] * 2


# Attacks that hold (kept so they stay held) ---------------------------------------------------


async def test_an_answer_sent_on_an_idle_connection_is_not_the_next_answer() -> None:
    """A stray answer arrives while the connection is idle: the next request goes out on a
    new connection and reads its own answer."""

    async def stray_while_idle(conn: Conn) -> None:
        await conn.read_request()
        conn.send(response(201, reason="Created"))
        await conn.writer.drain()
        await asyncio.sleep(0.1)
        conn.send(STRAY_ANSWER)
        await answer_all(conn)

    results = []
    for make_client in (default_client, lean_client):
        async with scripted_server(stray_while_idle, answer_all) as server, make_client() as client:
            url = f"http://127.0.0.1:{server.port}/2/tweets"
            first = await post_status(client, url, json={})
            await asyncio.sleep(0.3)  # the stray answer has arrived
            results.append(([first, await post_status(client, url, json={})], server.connections))
    assert results == [([CREATED] * 2, 2)] * 2


async def test_a_request_cancelled_mid_write_leaves_its_late_answer_unread() -> None:
    """The server answers early, then takes the body slowly; the request is cancelled while
    writing: the next request must not read that answer, nor leave the socket open."""

    async def slow_reader_early_answer(conn: Conn) -> None:
        if conn.index > 0:
            await answer_all(conn)
            return
        await conn.reader.read(65536)
        conn.send(STRAY_ANSWER)
        with contextlib.suppress(ConnectionError):
            for _ in range(1000):  # 64 KB per 10 ms: far slower than the client writes
                if not await conn.reader.read(65536):
                    return
                await asyncio.sleep(0.01)

    results = []
    for make_client in (default_client, lean_client):
        async with (
            scripted_server(slow_reader_early_answer) as server,
            make_client() as client,
        ):
            url = f"http://127.0.0.1:{server.port}/2/tweets"
            with anyio.move_on_after(0.2):
                await client.post(url, content=b"x" * (32 * 1024 * 1024))
            second = await post_status(client, url, json={})
            for _ in range(5):
                await asyncio.sleep(0)
            results.append((second, server.connections, open_sockets_to(server.port)))
    assert results == [(CREATED, 2, 1)] * 2  # the one socket left: the second connection


@pytest.mark.parametrize("close", ["fin", "reset"])
async def test_a_close_racing_the_reuse_check_is_never_not_sent(
    close: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server closed the idle connection, unseen by the reuse check (a race no client can
    close): the POST written into it fails as ambiguous, never as ConnectError."""

    async def answer_then_close(conn: Conn) -> None:
        await conn.read_request()
        conn.send(response(201, reason="Created"))
        await conn.writer.drain()
        if close == "fin":
            conn.close()
        else:
            await asyncio.sleep(0.05)
            conn.reset()

    async with scripted_server(answer_then_close) as server, lean_client() as client:
        url = f"http://127.0.0.1:{server.port}/2/tweets"
        await post_status(client, url, json={})
        await asyncio.sleep(0.2)
        monkeypatch.setattr(_Connection, "reusable", lambda self, expiry: True)
        outcome = await post_status(client, url, json={})
    expected = "RemoteProtocolError" if close == "fin" else "ReadError"
    assert outcome == ("error", expected)
    assert classify(method="POST", exception=getattr(httpx, expected)("x")).kind is (
        OutcomeKind.AMBIGUOUS
    )
