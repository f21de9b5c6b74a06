"""The lean transport fails (and answers) exactly as httpx's default transport, fault by fault.

Each scenario runs one request plan against a scripted loopback server twice: through httpx's
own transport (httpcore) and through LeanTransport. What each request gave (the exception
type, or status, body and version) and how many connections the server saw must be equal, and
equal to the table below, which is the error mapping docs/architecture.md documents: the
exception type is what decides whether a failed POST may have been posted.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import random
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from tests.notifier.tls import make_ca
from tests.writer.lean_http_server import Conn, ScriptedServer, response, scripted_server
from twitstack.writer.lean_transport import LeanTransport
from twitstack.writer.outcome import OutcomeKind, classify
from twitstack.writer.x_calls import delete_call, dm_call, tweet_call
from twitstack.writer.xapi_client import BearerAuth, XApiClient

pytestmark = pytest.mark.anyio
TIMEOUT = httpx.Timeout(0.5, connect=2.0)  # the stalls below outlast the 0.5 s read timeout
CONNECT_TIMEOUT = httpx.Timeout(2.0, connect=0.3)
BODY = {"text": "hé \U0001f600"}

Outcome = tuple[object, ...]
ClientFactory = Callable[..., httpx.AsyncClient]


def default_client(verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=TIMEOUT,
        limits=httpx.Limits(max_connections=1),
        verify=verify if verify is not None else True,
        trust_env=False,
    )


def lean_client(verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    context = verify if verify is not None else httpx.create_ssl_context()
    return httpx.AsyncClient(timeout=TIMEOUT, transport=LeanTransport(context), trust_env=False)


async def post(client: httpx.AsyncClient, url: str) -> Outcome:
    try:
        reply = await client.post(url, json=BODY)
    except httpx.HTTPError as exc:
        return ("error", type(exc).__name__)
    return ("response", reply.status_code, reply.content, reply.http_version, reply.reason_phrase)


# Server scripts -------------------------------------------------------------------------------


async def answer_all(conn: Conn) -> None:
    while True:
        await conn.read_request()
        conn.send(response(201, reason="Created"))


async def answer_once_then_close(conn: Conn) -> None:
    await conn.read_request()
    conn.send(response(201, reason="Created"))
    await conn.writer.drain()
    conn.close()


async def answer_once_then_reset(conn: Conn) -> None:
    await conn.read_request()
    conn.send(response(201, reason="Created"))
    await conn.writer.drain()
    conn.reset()


async def fin_before_request(conn: Conn) -> None:
    conn.writer.write_eof()
    await conn.until_client_closes()


async def stall_silently(conn: Conn) -> None:
    await conn.until_client_closes()


async def reset_on_accept(conn: Conn) -> None:
    conn.reset()


async def close_after_request(conn: Conn) -> None:
    await conn.read_request()
    conn.close()


async def reset_after_request(conn: Conn) -> None:
    await conn.read_request()
    conn.reset()


async def close_mid_head(conn: Conn) -> None:
    await conn.read_request()
    conn.send(b"HTTP/1.1 201 Created\r\nContent-Ty")
    await conn.writer.drain()
    conn.close()


async def close_mid_body(conn: Conn) -> None:
    await conn.read_request()
    conn.send(b'HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{"data":')
    await conn.writer.drain()
    conn.close()


async def stall_before_head(conn: Conn) -> None:
    await conn.read_request()
    await conn.until_client_closes()


async def stall_mid_body(conn: Conn) -> None:
    await conn.read_request()
    conn.send(b'HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{"data":')
    await conn.until_client_closes()


async def garbage_status(conn: Conn) -> None:
    await conn.read_request()
    conn.send(b"HTTP/1.1 abc nope\r\n\r\n")
    await conn.until_client_closes()


async def not_http(conn: Conn) -> None:
    await conn.read_request()
    conn.send(b"SSH-2.0-OpenSSH_9.6\r\n")
    await conn.writer.drain()
    conn.close()


async def chunked(conn: Conn) -> None:
    while True:
        await conn.read_request()
        head = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        first, rest = b'{"dat', b'a":{"id":"9"}}'
        chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(first), first, len(rest), rest)
        conn.send(head + chunks)


async def http10_until_close(conn: Conn) -> None:
    await conn.read_request()
    conn.send(b'HTTP/1.0 201 Created\r\n\r\n{"data":{"id":"10"}}')
    await conn.writer.drain()
    conn.close()


async def connection_close_kept_open(conn: Conn) -> None:
    """Says `Connection: close` but leaves the socket open: the client must not reuse it."""
    await conn.read_request()
    conn.send(response(201, headers=(("Connection", "close"),), reason="Created"))
    await conn.until_client_closes()


async def continue_100(conn: Conn) -> None:
    while True:
        await conn.read_request()
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n" + response(201, reason="Created"))


async def gzip_body(conn: Conn) -> None:
    while True:
        await conn.read_request()
        body = gzip.compress(b'{"data":{"id":"3"}}')
        headers = (("Content-Encoding", "gzip"), ("Content-Type", "application/json"))
        conn.send(response(201, body, headers=headers, reason="Created"))


# Request plans ---------------------------------------------------------------------------------

Plan = Callable[[httpx.AsyncClient, str, ScriptedServer], Awaitable[list[Outcome]]]


async def one(client: httpx.AsyncClient, url: str, server: ScriptedServer) -> list[Outcome]:
    return [await post(client, url)]


async def three(client: httpx.AsyncClient, url: str, server: ScriptedServer) -> list[Outcome]:
    return [await post(client, url) for _ in range(3)]


async def two_after_server_closed(
    client: httpx.AsyncClient, url: str, server: ScriptedServer
) -> list[Outcome]:
    """The second request finds its idle keep-alive connection closed by the server."""
    first = await post(client, url)
    with anyio.fail_after(5):
        await server.closed.wait()
    await asyncio.sleep(0)  # the FIN is in the client's socket; the loop may not have seen it
    return [first, await post(client, url)]


@dataclass(frozen=True)
class Scenario:
    scripts: tuple[Callable[[Conn], Awaitable[None]], ...]
    plan: Plan
    expected: list[Outcome]
    connections: int


CREATED = ("response", 201, b'{"data":{"id":"1","text":"t"}}', "HTTP/1.1", "Created")
SCENARIOS = {
    "keep_alive_reused": Scenario((answer_all,), three, [CREATED] * 3, 1),
    "fin_before_request": Scenario(
        (fin_before_request,), one, [("error", "RemoteProtocolError")], 1
    ),
    "reset_on_accept": Scenario((reset_on_accept,), one, [("error", "ReadError")], 1),
    "close_after_request": Scenario(
        (close_after_request,), one, [("error", "RemoteProtocolError")], 1
    ),
    "reset_after_request": Scenario((reset_after_request,), one, [("error", "ReadError")], 1),
    "close_mid_head": Scenario((close_mid_head,), one, [("error", "RemoteProtocolError")], 1),
    "close_mid_body": Scenario((close_mid_body,), one, [("error", "RemoteProtocolError")], 1),
    "stall_before_head": Scenario((stall_before_head,), one, [("error", "ReadTimeout")], 1),
    "stall_mid_body": Scenario((stall_mid_body,), one, [("error", "ReadTimeout")], 1),
    "garbage_status": Scenario((garbage_status,), one, [("error", "RemoteProtocolError")], 1),
    "not_http": Scenario((not_http,), one, [("error", "RemoteProtocolError")], 1),
    "chunked": Scenario(
        (chunked,),
        three,
        [("response", 201, b'{"data":{"id":"9"}}', "HTTP/1.1", "Created")] * 3,
        1,
    ),
    "http10_until_close": Scenario(
        (http10_until_close,),
        three,
        [("response", 201, b'{"data":{"id":"10"}}', "HTTP/1.0", "Created")] * 3,
        3,
    ),
    "connection_close": Scenario((connection_close_kept_open,), three, [CREATED] * 3, 3),
    "continue_100": Scenario((continue_100,), three, [CREATED] * 3, 1),
    "gzip": Scenario(
        (gzip_body,), one, [("response", 201, b'{"data":{"id":"3"}}', "HTTP/1.1", "Created")], 1
    ),
    "idle_closed_by_server": Scenario(
        (answer_once_then_close, answer_all), two_after_server_closed, [CREATED] * 2, 2
    ),
    "idle_reset_by_server": Scenario(
        (answer_once_then_reset, answer_all), two_after_server_closed, [CREATED] * 2, 2
    ),
}


async def run(scenario: Scenario, make_client: ClientFactory) -> tuple[list[Outcome], int]:
    async with scripted_server(*scenario.scripts) as server, make_client() as client:
        outcomes = await scenario.plan(client, f"http://127.0.0.1:{server.port}/2/tweets", server)
    return outcomes, server.connections


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_a_fault_fails_as_with_httpx_default_transport(name: str) -> None:
    scenario = SCENARIOS[name]
    httpx_default = await run(scenario, default_client)
    lean = await run(scenario, lean_client)
    assert lean == httpx_default
    assert lean == (scenario.expected, scenario.connections)


async def test_a_refused_connection_is_a_connect_error_not_sent() -> None:
    with anyio.fail_after(5):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens on the port any more
    url = f"http://127.0.0.1:{port}/2/tweets"
    outcomes = []
    for make_client in (default_client, lean_client):
        async with make_client() as client:
            outcomes.append(await post(client, url))
    assert outcomes == [("error", "ConnectError")] * 2
    error = httpx.ConnectError("refused")
    assert classify(method="POST", exception=error).kind is OutcomeKind.TRANSIENT_RETRY


@pytest.mark.parametrize("name", ["reset_after_request", "close_mid_body", "stall_before_head"])
def test_a_failure_after_the_request_was_written_is_ambiguous_for_a_post(name: str) -> None:
    """What the table above means for the writer: maybe posted, reconcile before re-sending."""
    (outcome,) = SCENARIOS[name].expected
    error_type = getattr(httpx, str(outcome[1]))
    kind = classify(method="POST", exception=error_type("x")).kind
    assert kind is OutcomeKind.AMBIGUOUS


# Streams, cancellation, concurrency ------------------------------------------------------------


async def test_a_body_left_unread_closes_the_connection() -> None:
    async def big(conn: Conn) -> None:
        while True:
            await conn.read_request()
            conn.send(response(200, b"x" * 200_000))

    results = []
    for make_client in (default_client, lean_client):
        async with scripted_server(big) as server, make_client() as client:
            url = f"http://127.0.0.1:{server.port}/"
            async with client.stream("GET", url) as streamed:
                async for _ in streamed.aiter_raw():
                    break  # one piece, then give up on the rest
            second = await client.get(url)
        results.append((len(second.content), server.connections))
    assert results == [(200_000, 2)] * 2


async def test_a_cancelled_request_leaves_no_half_read_connection_behind() -> None:
    async def stall_then_answer(conn: Conn) -> None:
        if conn.index == 0:
            await conn.read_request()
            await conn.until_client_closes()
        else:
            await answer_all(conn)

    results = []
    for make_client in (default_client, lean_client):
        async with scripted_server(stall_then_answer) as server, make_client() as client:
            url = f"http://127.0.0.1:{server.port}/2/tweets"
            with anyio.move_on_after(0.2):
                await client.post(url, json=BODY)
            results.append((await post(client, url), server.connections))
    assert results == [(CREATED, 2)] * 2


async def test_a_second_request_waits_for_the_connection_up_to_the_pool_timeout() -> None:
    results = []
    for make_client in (default_client, lean_client):
        async with scripted_server(stall_before_head) as server, make_client() as client:
            url = f"http://127.0.0.1:{server.port}/2/tweets"
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(post, client, url)  # holds the one connection, stalled
                await anyio.sleep(0.05)
                try:
                    await client.post(url, json=BODY, timeout=httpx.Timeout(5, pool=0.1))
                except httpx.HTTPError as exc:
                    results.append(type(exc).__name__)
                tasks.cancel_scope.cancel()
    assert results == ["PoolTimeout"] * 2


# TLS ------------------------------------------------------------------------------------------


async def test_tls_with_a_trusted_certificate(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    server_context = ca.server_context()
    server_context.set_alpn_protocols(["http/1.1", "h2"])
    protocols: list[str | None] = []

    async def answer_noting_alpn(conn: Conn) -> None:
        protocols.append(conn.writer.get_extra_info("ssl_object").selected_alpn_protocol())
        await answer_all(conn)

    results = []
    for make_client in (default_client, lean_client):
        trust = ssl.create_default_context(cafile=str(ca.ca_file))
        async with (
            scripted_server(answer_noting_alpn, tls=server_context) as server,
            make_client(trust) as client,
        ):
            url = f"https://127.0.0.1:{server.port}/2/tweets"
            results.append(([await post(client, url) for _ in range(2)], server.connections))
    assert results == [([CREATED] * 2, 1)] * 2
    assert protocols == ["http/1.1"] * 2  # both offer HTTP/1.1 only


async def test_tls_with_an_untrusted_certificate_is_a_connect_error(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    outcomes = []
    for make_client in (default_client, lean_client):
        untrusted = httpx.create_ssl_context()  # the system's CAs: not this test CA
        async with (
            scripted_server(answer_all, tls=ca.server_context()) as server,
            make_client(untrusted) as client,
        ):
            outcomes.append(await post(client, f"https://127.0.0.1:{server.port}/"))
    assert outcomes == [("error", "ConnectError")] * 2


@pytest.mark.parametrize("script", [reset_on_accept, not_http], ids=["reset", "plain_http"])
async def test_a_failed_tls_handshake_is_a_connect_error(
    script: Callable[[Conn], Awaitable[None]],
) -> None:
    async def misbehave(conn: Conn) -> None:
        if script is not_http:
            conn.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await conn.writer.drain()
            conn.close()
        else:
            await script(conn)

    outcomes = []
    for make_client in (default_client, lean_client):
        async with scripted_server(misbehave) as server, make_client() as client:
            outcomes.append(await post(client, f"https://127.0.0.1:{server.port}/"))
    assert outcomes == [("error", "ConnectError")] * 2


# The writer's calls, byte for byte ------------------------------------------------------------


async def writer_calls(client: XApiClient) -> None:
    auth = BearerAuth("token-1")
    for call in (
        tweet_call("hé \U0001f600 <b>", reply={"in_reply_to_tweet_id": "5"}),
        dm_call("1001", "a DM"),
        delete_call("77"),
    ):
        await client.execute(call, auth=auth, auth_kind="oauth2")
    # Media uploads go through the same per-worker client: JSON, multipart and a GET.
    await client.media("POST", "/2/media/upload/initialize", auth=auth, auth_kind="oauth2",
                       json={"media_type": "image/png", "total_bytes": 3})  # fmt: skip
    await client.media(
        "POST", "/2/media/upload/9/append", auth=auth, auth_kind="oauth2",
        files={"media": b"\x89PN"}, data={"segment_index": "0"},
    )  # fmt: skip
    await client.media("GET", "/2/media/upload", auth=auth, auth_kind="oauth2",
                       params={"command": "STATUS", "media_id": "9"})  # fmt: skip


async def test_the_writer_calls_put_the_same_bytes_on_the_wire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The multipart boundary is random per request: the same one on both sides.
    monkeypatch.setattr("os.urandom", lambda n: b"\x07" * n)
    wire: list[list[bytes]] = []
    async with scripted_server(answer_all) as server:
        base = f"http://127.0.0.1:{server.port}"
        for make_client in (default_client, lean_client):
            async with make_client() as http:
                await writer_calls(XApiClient(http, base_url=base))
            wire.append(server.requests[:])
            server.requests.clear()
    assert len(wire[0]) == 6
    assert wire[1] == wire[0]
    assert b"multipart/form-data" in wire[0][4]


def _serve_closing_first_connection(
    listener: socket.socket, close_now: threading.Event, closed: threading.Event
) -> None:
    """A blocking server: answer on the first connection, close it when told, then answer on
    the next one (if any comes within the socket timeout)."""
    for index in range(2):
        try:
            sock, _ = listener.accept()
        except TimeoutError:
            return
        with sock:
            sock.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                piece = sock.recv(65536)
                if not piece:
                    break
                data += piece
            sock.sendall(response(201, reason="Created"))
            if index == 0:
                close_now.wait(5)
        closed.set()


async def test_an_idle_connection_closed_unseen_by_the_event_loop_is_not_reused() -> None:
    """The server's FIN is in the socket but the loop has not run since: the readability check
    (httpcore's too) must still see it, or the request goes into a dead connection."""
    results = []
    for make_client in (default_client, lean_client):
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(5)
        close_now, closed = threading.Event(), threading.Event()
        server = threading.Thread(
            target=_serve_closing_first_connection, args=(listener, close_now, closed)
        )
        server.start()
        try:
            async with make_client() as client:
                url = f"http://127.0.0.1:{listener.getsockname()[1]}/2/tweets"
                first = await post(client, url)
                close_now.set()
                closed.wait(5)  # blocks the loop: it cannot see the FIN before the next call
                results.append((first, await post(client, url)))
        finally:
            close_now.set()
            server.join(10)
            listener.close()
    assert results == [(CREATED, CREATED)] * 2


async def test_a_connect_that_never_completes_is_a_connect_timeout() -> None:
    """A listener whose accept queue is full drops the SYN: the connect hangs until timeout."""
    with contextlib.ExitStack() as sockets:
        listener = sockets.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(3):  # fill the queue; never accepted
            filler = sockets.enter_context(socket.socket())
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        await anyio.sleep(0.05)
        outcomes = []
        for make_client in (default_client, lean_client):
            async with make_client() as client:
                try:
                    await client.post(f"http://127.0.0.1:{port}/", timeout=CONNECT_TIMEOUT)
                except httpx.HTTPError as exc:
                    outcomes.append(type(exc).__name__)
    assert outcomes == ["ConnectTimeout"] * 2


async def test_a_tls_handshake_that_never_completes_is_a_connect_timeout() -> None:
    outcomes = []
    for make_client in (default_client, lean_client):
        async with scripted_server(stall_silently) as server, make_client() as client:
            try:
                await client.post(f"https://127.0.0.1:{server.port}/", timeout=CONNECT_TIMEOUT)
            except httpx.HTTPError as exc:
                outcomes.append(type(exc).__name__)
    assert outcomes == ["ConnectTimeout"] * 2


async def test_a_response_before_the_whole_body_was_sent_is_read() -> None:
    """A server may answer (413, say) before it read the body: both read that answer."""

    async def answer_early(conn: Conn) -> None:
        await conn.reader.readuntil(b"\r\n\r\n")
        conn.send(response(413, b"{}", headers=(("Connection", "close"),), reason="Too Large"))
        await conn.until_client_closes()  # reads (and drops) the rest of the body

    async def body() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b"x" * 65536

    results = []
    for make_client in (default_client, lean_client):
        async with scripted_server(answer_early) as server, make_client() as client:
            reply = await client.post(f"http://127.0.0.1:{server.port}/2/media", content=body())
            results.append((reply.status_code, reply.content))
    assert results == [(413, b"{}")] * 2


async def test_a_body_the_server_never_reads_is_a_write_timeout() -> None:
    """Past the kernel's socket buffers (a few MB on loopback) the write waits, then times
    out: ambiguous for a POST, as with httpx's own transport."""

    async def never_read(conn: Conn) -> None:
        conn.writer.transport.pause_reading()
        await conn.server.closed.wait()

    outcomes = []
    for make_client in (default_client, lean_client):
        async with scripted_server(never_read) as server, make_client() as client:
            try:
                await client.post(
                    f"http://127.0.0.1:{server.port}/", content=b"x" * (64 * 1024 * 1024),
                    timeout=httpx.Timeout(2.0, write=0.3),
                )  # fmt: skip
            except httpx.HTTPError as exc:
                outcomes.append(type(exc).__name__)
            server.closed.set()
    assert outcomes == ["WriteTimeout"] * 2


async def test_a_tls_server_closing_after_its_answer_is_handled_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """close_notify after a `Connection: close` answer: the next request reconnects, and
    asyncio's TLS logs nothing (it warns when the protocol asks to keep a TLS write side)."""
    ca = make_ca(tmp_path / "ca")

    async def answer_and_close(conn: Conn) -> None:
        await conn.read_request()
        conn.send(response(201, headers=(("Connection", "close"),), reason="Created"))
        await conn.writer.drain()
        conn.close()

    trust = ssl.create_default_context(cafile=str(ca.ca_file))
    async with (
        scripted_server(answer_and_close, tls=ca.server_context()) as server,
        lean_client(trust) as client,
    ):
        url = f"https://127.0.0.1:{server.port}/2/tweets"
        first = await post(client, url)
        with anyio.fail_after(5):
            await server.closed.wait()
        outcomes = [first, await post(client, url)]
    assert outcomes == [CREATED] * 2
    assert server.connections == 2
    assert not [r for r in caplog.records if "eof_received" in r.getMessage()]


@pytest.mark.parametrize("seed", range(12))
async def test_a_response_arriving_in_any_pieces_reads_the_same(seed: int) -> None:
    """Head and body cut at random points, sent piece by piece (chunked or Content-Length,
    up to 1 MB: past the point where the lean transport pauses reading), read slowly."""
    rng = random.Random(seed)
    body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 10, 70_000, 1_000_000])))
    if seed % 2:
        framed = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 4096]), body[i : i + 4096])
            for i in range(0, len(body), 4096)
        )
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n" + framed
        raw += b"0\r\n\r\n"
    else:
        raw = response(200, body, headers=(("X-A", "1"),))
    cuts = sorted(rng.sample(range(1, len(raw)), min(20, len(raw) - 1)))

    async def in_pieces(conn: Conn) -> None:
        while True:
            await conn.read_request()
            for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True):
                conn.send(raw[start:end])
                await conn.writer.drain()
                await asyncio.sleep(0)

    results = []
    for make_client in (default_client, lean_client):
        async with scripted_server(in_pieces) as server, make_client() as client:
            url = f"http://127.0.0.1:{server.port}/"
            for _ in range(2):  # and the connection is reused after it
                async with client.stream("GET", url) as reply:
                    # The pieces pile up unread meanwhile (the lean transport stops reading
                    # the socket past 256 kB, and resumes as the body is read).
                    await anyio.sleep(0.05)
                    content = await reply.aread()
                results.append((reply.status_code, reply.headers["x-a"], content))
            results.append(server.connections)
    assert results[:3] == results[3:]
    assert results[:3] == [(200, "1", body), (200, "1", body), 1]


async def test_the_fast_path_reads_a_gzip_reply_and_keeps_its_cookie() -> None:
    async def gzip_with_cookie(conn: Conn) -> None:
        while True:
            await conn.read_request()
            headers = (
                ("Content-Encoding", "gzip"),
                ("Set-Cookie", "guest_id=v1; Path=/"),
                ("Content-Type", "application/json"),
            )
            body = gzip.compress(b'{"data":{"id":"5","text":"t"}}')
            conn.send(response(201, body, headers=headers, reason="Created"))

    async with scripted_server(gzip_with_cookie) as server, lean_client() as http:
        client = XApiClient(http, base_url=f"http://127.0.0.1:{server.port}")
        auth = BearerAuth("t")
        first = await client.execute(tweet_call("one"), auth=auth, auth_kind="oauth2")
        await client.execute(tweet_call("two"), auth=auth, auth_kind="oauth2")
    assert first.outcome.result_id == "5"
    assert b"cookie: guest_id=v1" in server.requests[1].lower()
    assert server.connections == 1
