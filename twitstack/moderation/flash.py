"""Flash messages ("Saved as revision 3.") kept server-side per session, never in the URL.

A `?notice=` in the query string would let anyone link a moderator to a page that says
whatever they like ("Approved. Now also approve req-42"). Instead, an endpoint answers with
`flash_redirect(...)`: the message rides in a private response header, which
`FlashMiddleware` removes before the response leaves and files under the caller's session.
The next page rendered for that session shows it once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FLASH_HEADER = "x-twitstack-flash"
_MAX_LENGTH = 300
_MAX_SESSIONS = 10_000
_TTL_S = 300.0


def flash_redirect(path: str, *, notice: str = "", error: str = "") -> RedirectResponse:
    """A 303 to `path` whose message is shown by the next page of the same session."""
    body = json.dumps({"notice": notice[:_MAX_LENGTH], "error": error[:_MAX_LENGTH]})
    return RedirectResponse(path, status_code=303, headers={FLASH_HEADER: body})


def session_key(token: str) -> str:
    """The key a session is known by server-side (the SHA-256 of its cookie value)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class FlashStore:
    """At most one pending message pair per session, forgotten after a few minutes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pending: OrderedDict[str, tuple[float, str, str]] = OrderedDict()

    def put(self, key: str, notice: str, error: str) -> None:
        self._pending[key] = (self._clock(), notice, error)
        self._pending.move_to_end(key)
        while len(self._pending) > _MAX_SESSIONS:
            self._pending.popitem(last=False)

    def pop(self, key: str) -> tuple[str, str]:
        """The session's (notice, error), once; ("", "") when there is none."""
        entry = self._pending.pop(key, None)
        if entry is None or self._clock() - entry[0] > _TTL_S:
            return "", ""
        return entry[1], entry[2]


class FlashMiddleware:
    """Moves a response's flash header into the store, under the requesting session."""

    def __init__(self, app: ASGIApp, *, store: FlashStore, cookie_name: str) -> None:
        self.app = app
        self.store = store
        self.cookie_name = cookie_name

    def _session_of(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                token = cookie_parser(value.decode("latin-1")).get(self.cookie_name)
                if token:
                    return session_key(token)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def file_flash(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                raw = headers.get(FLASH_HEADER)
                if raw is not None:
                    del headers[FLASH_HEADER]
                    key = self._session_of(scope)
                    if key is not None:
                        data = json.loads(raw)
                        self.store.put(key, str(data["notice"]), str(data["error"]))
            await send(message)

        await self.app(scope, receive, file_flash)
