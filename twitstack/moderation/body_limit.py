"""Request bodies bounded before they are read, and JSON parsed with a bounded nesting depth."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import anyio
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_DEPTH = 32


class JsonBodyError(ValueError):
    """A body is not acceptable JSON; the message says why (for a 400)."""


class JsonTooDeepError(JsonBodyError):
    """JSON nested deeper than the limit."""


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_tree(value: Any, limit: int) -> None:
    """Nesting at most `limit` deep, and no string (key or value) holding a lone surrogate:
    JSON may spell `"\\ud800"`, which is no Unicode text and which neither Redis nor SQLite
    can store (it was a 500 wherever such a string reached them)."""
    # Iterative: the point is never to recurse on attacker-shaped data.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str) and _has_surrogate(item):
            raise JsonBodyError("JSON text with a lone surrogate (\\ud800-\\udfff) is not Unicode")
        if isinstance(item, dict | list):
            if depth > limit:
                raise JsonTooDeepError(f"JSON nested deeper than {limit} levels")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def loads_bounded(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads`, but nesting deeper than `max_depth` is a JsonTooDeepError, never a crash,
    and a lone surrogate in any string a JsonBodyError.

    The stdlib parser recurses and raises RecursionError on deep input (~1,000 levels); what it
    does accept is walked once more, without recursion, to hold the smaller limit.
    """
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonTooDeepError(f"JSON nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise JsonBodyError("expected a JSON document") from None
    _check_tree(value, max_depth)
    return value


class _BodyTooLarge(Exception):
    """Raised from `receive` once more bytes arrived than the limit allows."""


class _BodyTooSlow(Exception):
    """Raised from `receive` when the body has not arrived by the deadline."""


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413: by Content-Length before reading anything, and
    by counting while reading for bodies sent without one (chunked). A body that has not
    arrived within `max_seconds` of the request's start is answered 408 (slow-body clients).

    The anonymous paths (login, API-key exchange) get the smaller limit: anyone can reach them.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        anonymous_max_bytes: int,
        anonymous_paths: Collection[str],
        max_seconds: float = 30.0,
        upload_paths: Collection[str] = (),
        upload_max_bytes: int = 0,
        upload_max_seconds: float = 0.0,
    ) -> None:
        self.app = app
        self.max_seconds = max_seconds
        # Media uploads: their own (larger) size and time limits.
        self.upload_paths = frozenset(upload_paths)
        self.upload_max_bytes = upload_max_bytes
        self.upload_max_seconds = upload_max_seconds
        self.max_bytes = max_bytes
        self.anonymous_max_bytes = anonymous_max_bytes
        self.anonymous_paths = frozenset(anonymous_paths)

    def _refusal(self, scope: Scope, status: int, message: str) -> Response:
        if str(scope.get("path", "")).startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=status)
        return PlainTextResponse(f"{status}: {message}", status_code=status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        limit = self.anonymous_max_bytes if path in self.anonymous_paths else self.max_bytes
        max_seconds = self.max_seconds
        if path in self.upload_paths and scope.get("method") == "POST":
            limit, max_seconds = self.upload_max_bytes, self.upload_max_seconds
        too_large = f"request body too large: at most {limit} bytes"
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._refusal(scope, 400, "invalid Content-Length")(scope, receive, send)
                return
            if int(declared) > limit:
                await self._refusal(scope, 413, too_large)(scope, receive, send)
                return
        received = 0
        started = False
        deadline = anyio.current_time() + max_seconds
        body_done = False

        async def counted_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                # After the body only a disconnect can come, which may take any time.
                return await receive()
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    message = await receive()
            except TimeoutError:
                raise _BodyTooSlow from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refusal(scope, 413, too_large)(scope, receive, send)
        except _BodyTooSlow:
            if started:
                raise
            slow = f"request body not received within {max_seconds:g} seconds"
            response = self._refusal(scope, 408, slow)
            response.headers["connection"] = "close"
            await response(scope, receive, send)
