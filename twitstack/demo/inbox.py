"""The demo's notification inbox: a loopback webhook receiver that lists what the notifier sent.

The demo's notifier delivers to it exactly as to any webhook (signed, retried); it checks the
signature like a real receiver would and shows the newest notifications on one page, so a
newcomer sees what moderators would be told. It lives only inside `twitstack demo`, on
127.0.0.1 whatever `--host` the UI listens on, and keeps nothing on disk.

The notifications name requests and accounts, so reading them takes the secret token the
banner's link carries (`?token=`, a capability URL: another local user or a web page the
browser visits cannot guess it). The webhook itself is guarded by its signature instead.
"""

from __future__ import annotations

import html
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from twitstack.notifier.signing import DELIVERY_HEADER, SIGNATURE_HEADER, verify

MAX_KEPT = 200
_MAX_BODY = 256 * 1024


@dataclass(frozen=True, slots=True)
class Received:
    """One notification as delivered."""

    delivery_id: str
    received_at: float
    body: dict[str, Any]


class NotificationInbox:
    """Keeps the newest MAX_KEPT deliveries (a repeated delivery id is kept once)."""

    def __init__(self, signing_key: str, token: str | None = None) -> None:
        self._key = signing_key
        self.token = token or secrets.token_urlsafe(24)
        self.received: deque[Received] = deque(maxlen=MAX_KEPT)

    def _allowed(self, request: Request) -> bool:
        given = request.query_params.get("token", "")
        return secrets.compare_digest(given.encode(), self.token.encode())

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/", self._page, methods=["GET"]),
                Route("/notifications.json", self._json, methods=["GET"]),
                Route("/hook", self._hook, methods=["POST"]),
            ]
        )

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > _MAX_BODY:
            return PlainTextResponse("body too large", status_code=413)
        header = request.headers.get(SIGNATURE_HEADER, "")
        if not verify(self._key, header, body, now=time.time()):
            return PlainTextResponse("bad or stale signature", status_code=401)
        try:
            data = json.loads(body)
        except ValueError:
            return PlainTextResponse("body is not JSON", status_code=400)
        if not isinstance(data, dict):
            return PlainTextResponse("body is not a JSON object", status_code=400)
        delivery = request.headers.get(DELIVERY_HEADER, "")
        if all(r.delivery_id != delivery for r in self.received):  # at least once: dedupe
            self.received.appendleft(Received(delivery, time.time(), data))
        return PlainTextResponse("ok")

    async def _json(self, request: Request) -> Response:
        if not self._allowed(request):
            return _refused()
        return _private(
            JSONResponse([{"delivery_id": r.delivery_id, **r.body} for r in self.received])
        )

    async def _page(self, request: Request) -> Response:
        if not self._allowed(request):
            return _refused()
        rows = "\n".join(_row(r) for r in self.received) or (
            '<li class="empty">Nothing yet. A request that fails, needs review or waits more '
            "than a minute shows up here within seconds.</li>"
        )
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<meta name="referrer" content="no-referrer">
<title>twitstack demo: notifications</title>
<style>body{{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem}}
li{{margin:.6rem 0}} .kind{{font-family:monospace;color:#555}} .when{{color:#777}}</style>
</head><body>
<h1>Notifications</h1>
<p>What the demo's notifier delivered to this signed webhook (newest first; the page
refreshes every 5 s). In production the same notifications go to Slack, e-mail or your
own webhook.</p>
<ul>
{rows}
</ul>
</body></html>"""
        return _private(HTMLResponse(page))


def _refused() -> Response:
    return PlainTextResponse(
        "The notifications page needs its token: open the link the demo's banner prints "
        "(notifications  http://127.0.0.1:PORT/?token=...).\n",
        status_code=401,
    )


def _private(response: Response) -> Response:
    """The token is in the page's URL: never sent on to the links, nor kept by a cache."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _row(received: Received) -> str:
    body = received.body
    when = time.strftime("%H:%M:%S", time.localtime(received.received_at))
    links = "".join(
        f'<li><a href="{_href(r.get("url"))}">'
        f"{html.escape(str(r.get('summary', '')))}</a></li>"
        for r in body.get("requests", []) if isinstance(r, dict)
    )  # fmt: skip
    more = int(body.get("more", 0)) if str(body.get("more", 0)).isdigit() else 0
    extra = f"<li>and {more} more</li>" if more else ""
    return (
        f'<li><span class="when">{when}</span> '
        f'<span class="kind">{html.escape(str(body.get("event", "")))}</span> '
        f'<a href="{_href(body.get("url"))}">'
        f"{html.escape(str(body.get('title', '')))}</a>"
        f"{'<ul>' + links + extra + '</ul>' if links or extra else ''}</li>"
    )


def _href(url: object) -> str:
    """A link target: only http(s) URLs (the notifier's), escaped; anything else goes nowhere."""
    text = str(url) if isinstance(url, str) else ""
    return html.escape(text) if text.startswith(("http://", "https://")) else "#"
