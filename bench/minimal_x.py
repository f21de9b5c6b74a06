"""A minimal fake X for throughput benches, and a raw load generator to find its ceiling.

    python bench/minimal_x.py serve PORT        # the server (its own process, pinned by the caller)
    python bench/minimal_x.py load URL SECONDS CONNECTIONS   # prints "<requests> <seconds>"

The sandbox app (`twitstack.sandbox`) validates, stores and rate-limits like X, which costs
~2 ms of CPU per POST: a throughput bench that uses it measures the sandbox. This server is a
bare asyncio protocol: HTTP/1.1 keep-alive, `POST /2/tweets` answers 201 with X's body shape
(the text echoed, a fresh id), `GET /2/openapi.json` answers 200 (the writer's probe). It also
keeps, per posted text, the wall-clock time of its 201 (for latency rows and double-send
checks): `GET /_stats` = {"posts": n, "last": t}, `GET /_times` = {text: t}, `POST /_reset`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

HEAD_END = b"\r\n\r\n"


class FakeX(asyncio.Protocol):
    posts: dict[str, float] = {}  # noqa: RUF012 - one process-wide store, on purpose
    last = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(HEAD_END)
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, path = head.split(" ", 2)[:2]
            self.transport.write(self.answer(method, path, body))

    def answer(self, method: str, path: str, body: bytes) -> bytes:
        cls = type(self)
        if method == "POST" and path == "/2/tweets":
            text = json.loads(body)["text"]
            now = time.time()
            cls.posts[text] = now
            cls.last = now
            tweet_id = str(10**15 + len(cls.posts))
            return reply(201, {"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids":
                                        [tweet_id]}})  # fmt: skip
        if method == "GET" and path == "/_stats":
            return reply(200, {"posts": len(cls.posts), "last": cls.last})
        if method == "GET" and path == "/_times":
            return reply(200, cls.posts)
        if method == "POST" and path == "/_reset":
            cls.posts = {}
            cls.last = 0.0
            return reply(200, {})
        if method == "GET" and path == "/2/openapi.json":
            return reply(200, {"openapi": "3.0.0"})
        return reply(404, {"title": "Not Found"})


def reply(status: int, payload: object) -> bytes:
    body = json.dumps(payload).encode()
    reason = {200: "OK", 201: "Created", 404: "Not Found"}[status]
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(FakeX, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def load(url: str, seconds: float, connections: int) -> tuple[int, float]:
    """Requests answered in `seconds` by `connections` keep-alive clients posting one tweet each
    round trip (no pipelining, like an HTTP client pool); the client is as cheap as it gets."""
    host, port = url.removeprefix("http://").split(":")
    done = 0
    deadline = time.perf_counter() + seconds

    async def client(i: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, int(port))
        n = 0
        while time.perf_counter() < deadline:
            body = json.dumps({"text": f"load {i} {n}"}).encode()
            writer.write(
                b"POST /2/tweets HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"authorization: Bearer t\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            )
            head = await reader.readuntil(HEAD_END)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            n += 1
            done += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(connections)))
    return done, time.perf_counter() - started


def main() -> None:
    if sys.argv[1:2] == ["serve"] and len(sys.argv) == 3:
        asyncio.run(serve(int(sys.argv[2])))
    elif sys.argv[1:2] == ["load"] and len(sys.argv) == 5:
        done, elapsed = asyncio.run(load(sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
        print(done, elapsed)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
