"""Rendering pages: the Jinja2 environment, its filters, and the context every page gets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from twitstack.moderation.access import Principal, deps_of
from twitstack.moderation.card_context import post_url
from twitstack.moderation.dm_privacy import HIDDEN_NOTE, dm_text_visible, row_text
from twitstack.moderation.media_badge import media_label
from twitstack.moderation.views.attachments import attachments_of, post_link
from twitstack.moderation.views.safe_display import neutralise_bidi, x_link
from twitstack.moderation.views.security_events import security_event

ROLE_NAMES = {
    "viewer": "Viewer",
    "author": "Author",
    "moderator": "Moderator",
    "admin": "Administrator",
}


def _when(value: float | datetime | None) -> str:
    if value is None:
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(value: float | None, now: float) -> str:
    if value is None:
        return "—"
    seconds = max(0, int(now - value))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def new_environment() -> Environment:
    """The template environment; autoescaping is on for every template."""
    env = Environment(
        loader=PackageLoader("twitstack.moderation", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        finalize=neutralise_bidi,
    )
    env.filters["when"] = _when
    env.filters["age"] = _age
    env.filters["row_text"] = row_text
    env.filters["x_link"] = x_link
    env.filters["media_label"] = media_label
    env.globals["security_event"] = security_event
    env.globals["attachments_of"] = attachments_of
    env.globals["post_link"] = post_link
    # How a role reads in the header ("admin" the username and "admin" the role read as a stutter).
    env.globals["role_names"] = ROLE_NAMES
    # Label -> "@handle" of connected X accounts, kept current by the moderation service.
    env.globals["x_handles"] = {}
    return env


def page_url(request: Request, **changes: Any) -> str:
    """The current URL with some query parameters replaced (None removes one)."""
    query = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = str(value)
    return f"{request.url.path}?{urlencode(query)}" if query else request.url.path


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a page with the caller, their CSRF token and the navigation filled in."""
    deps = deps_of(request)
    principal: Principal | None = getattr(request.state, "principal", None)
    session = principal.session if principal else None
    notice, error = deps.flash.pop(session.id_hash) if session else ("", "")
    base: dict[str, Any] = {
        "principal": principal,
        "role": int(principal.user.role) if principal else 0,
        "dm_visible": dm_text_visible(principal),
        "dm_hidden_note": HIDDEN_NOTE,
        "csrf_token": principal.session.csrf_token if principal and principal.session else "",
        # Never from the query string: only what this server filed for this session.
        "notice": notice,
        "error": error,
        "nav": "",
        "pending_count": getattr(request.state, "pending_count", None),
        "now": deps.clock(),
        "page_url": lambda number: page_url(request, page=number),
        "post_url": lambda tweet_id: post_url(deps.settings.post_url_template, tweet_id),
    }
    base.update(context or {})
    # A page's own message (a form error) wins; an empty one leaves the flash showing.
    base["notice"] = base["notice"] or notice
    base["error"] = base["error"] or error
    body = deps.templates.get_template(template).render(base)
    return HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
