"""The Starlette app factory: routes (all guarded by the role table), middleware, error pages."""

from __future__ import annotations

import time
from importlib.resources import files

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from twitstack.core.logging import get_logger
from twitstack.moderation import api, health, media_door, openapi
from twitstack.moderation.access import Endpoint, guarded, resolve_principal
from twitstack.moderation.auth_router import get_auth_router
from twitstack.moderation.body_limit import BodyLimitMiddleware
from twitstack.moderation.deps import ModerationDeps
from twitstack.moderation.flash import FlashMiddleware
from twitstack.moderation.metrics import ModerationMetrics
from twitstack.moderation.security import SecurityHeadersMiddleware
from twitstack.moderation.views import (
    admin_pages,
    auth_pages,
    bulk_pages,
    compose,
    dead_letter_pages,
    followup_pages,
    new_pages,
    queue_pages,
    schedule_pages,
    spend_pages,
    status_pages,
    x_account_pages,
)
from twitstack.moderation.views.render import render
from twitstack.writes.errors import UnreadableError

log = get_logger("twitstack.moderation.app")
FAVICON = (files("twitstack.moderation") / "static" / "favicon.svg").read_bytes()


async def _home(request: Request) -> Response:
    return RedirectResponse("/queue", status_code=303)


async def _favicon(request: Request) -> Response:
    """Browsers and tools ask for /favicon.ico whatever the page links: the SVG icon."""
    return Response(FAVICON, media_type="image/svg+xml", headers={"cache-control": "max-age=86400"})


# (path, methods, endpoint). Access rules live in roles.ROUTE_RULES, never here.
_PAGES: tuple[tuple[str, tuple[str, ...], Endpoint], ...] = (
    ("/healthz", ("GET",), health.healthz),
    ("/readyz", ("GET",), health.readyz),
    ("/metrics", ("GET",), health.metrics),
    ("/openapi.json", ("GET",), openapi.openapi_json),
    ("/favicon.ico", ("GET",), _favicon),
    ("/login", ("GET",), auth_pages.login_page),
    ("/login", ("POST",), auth_pages.login_submit),
    ("/logout", ("POST",), auth_pages.logout),
    ("/", ("GET",), _home),
    ("/queue", ("GET",), queue_pages.queue_page),
    ("/queue/rows", ("GET",), queue_pages.queue_rows),
    ("/queue/bulk", ("POST",), bulk_pages.bulk_submit),
    ("/compose/check", ("POST",), compose.check_text),
    ("/requests/new", ("GET",), new_pages.new_page),
    ("/requests/new", ("POST",), new_pages.new_submit),
    ("/requests/{request_id}", ("GET",), queue_pages.detail_page),
    ("/requests/{request_id}/edit", ("GET",), queue_pages.edit_page),
    ("/requests/{request_id}/edit", ("POST",), queue_pages.edit_submit),
    ("/requests/{request_id}/approve", ("POST",), queue_pages.approve_submit),
    ("/requests/{request_id}/reject", ("POST",), queue_pages.reject_submit),
    ("/requests/{request_id}/retry", ("POST",), followup_pages.retry_submit),
    ("/requests/{request_id}/copy", ("POST",), followup_pages.copy_submit),
    ("/requests/{request_id}/cancel", ("POST",), schedule_pages.cancel_submit),
    ("/requests/{request_id}/reschedule", ("POST",), schedule_pages.reschedule_submit),
    ("/scheduled", ("GET",), schedule_pages.scheduled_page),
    ("/history", ("GET",), status_pages.history_page),
    ("/accounts", ("GET",), status_pages.accounts_page),
    ("/accounts/x/connect", ("GET",), x_account_pages.connect_page),
    ("/accounts/x/connect", ("POST",), x_account_pages.connect_submit),
    ("/accounts/x/callback", ("GET",), x_account_pages.callback),
    ("/accounts/x/finish", ("GET",), x_account_pages.finish),
    ("/accounts/x/{user_id}/reconnect", ("POST",), x_account_pages.reconnect_submit),
    ("/accounts/x/{user_id}/disconnect", ("POST",), x_account_pages.disconnect_submit),
    ("/accounts/spend/cap", ("POST",), spend_pages.cap_submit),
    ("/dead-letters", ("GET",), dead_letter_pages.dead_letters_page),
    ("/dead-letters/{entry_id}", ("GET",), dead_letter_pages.dead_letter_detail),
    ("/dead-letters/{entry_id}/retry", ("POST",), dead_letter_pages.dead_letter_retry),
    ("/dead-letters/{entry_id}/discard", ("POST",), dead_letter_pages.dead_letter_discard),
    ("/users", ("GET",), admin_pages.users_page),
    ("/users", ("POST",), admin_pages.user_create),
    ("/users/{user_id}/role", ("POST",), admin_pages.user_role),
    ("/users/{user_id}/disable", ("POST",), admin_pages.user_disable),
    ("/users/{user_id}/enable", ("POST",), admin_pages.user_enable),
    ("/users/{user_id}/password", ("POST",), admin_pages.user_password),
    ("/audit", ("GET",), admin_pages.audit_page),
    ("/apikeys", ("GET",), admin_pages.apikeys_page),
    ("/apikeys", ("POST",), admin_pages.apikey_create),
    ("/apikeys/{key_id}/revoke", ("POST",), admin_pages.apikey_revoke),
    ("/api/media", ("POST",), media_door.upload_media),
    ("/media/{sha256}", ("GET",), media_door.serve_media),
    ("/api/requests", ("GET",), api.list_requests),
    ("/api/requests", ("POST",), api.create_request),
    ("/api/requests/{request_id}", ("GET",), api.get_request),
    ("/api/requests/{request_id}", ("PATCH",), api.edit_request),
    ("/api/requests/{request_id}/approve", ("POST",), api.approve_request),
    ("/api/requests/{request_id}/reject", ("POST",), api.reject_request),
    ("/api/spend", ("GET",), spend_pages.api_spend),
)


# The routes anyone can send a body to: they get the smaller body limit.
ANONYMOUS_POSTS = frozenset({"/login", "/api/auth/token"})
# The routes that take files: they get the media body limits.
UPLOAD_POSTS = frozenset({"/api/media", "/requests/new"})


def build_routes() -> list[BaseRoute]:
    """Every route of the app, each endpoint wrapped by the access guard."""
    routes: list[BaseRoute] = [
        Route(path, guarded(path, endpoint), methods=list(methods))
        for path, methods, endpoint in _PAGES
    ]
    routes.extend(get_auth_router())
    routes.append(
        Mount("/static", StaticFiles(packages=[("twitstack.moderation", "static")]), name="static")
    )
    return routes


class RequestMetricsMiddleware:
    """Counts and times every request by route template (never the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, *, metrics: ModerationMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            path = str(scope.get("path", ""))
            route = scope.get("twitstack.route") or (
                "/static" if path.startswith("/static/") else "unmatched"
            )
            method = str(scope.get("method", ""))
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_latency.labels(method, route).observe(time.perf_counter() - started)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


_ERROR_TITLES = {404: "Page not found", 405: "Method not allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _wants_json(request):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    if request.method not in ("GET", "HEAD") or exc.status_code not in _ERROR_TITLES:
        return Response(
            f"{exc.status_code}: {exc.detail}", status_code=exc.status_code, media_type="text/plain"
        )
    # A page in the desk's own style; the header shows only if the caller is logged in.
    request.state.principal = await resolve_principal(request)
    message = (
        "There is no page at this address. It may have moved, or the link is mistyped."
        if exc.status_code == 404
        else "This address does not take that kind of request."
    )
    context = {"status": exc.status_code, "title": _ERROR_TITLES[exc.status_code]}
    context["message"] = message
    return render(request, "error.html", context, status_code=exc.status_code)


async def _unreadable(request: Request, exc: Exception) -> Response:
    """A record quarantined as unreadable (writes/quarantine.py) is a 409, never a 500."""
    assert isinstance(exc, UnreadableError)
    detail = f"{exc.source} {exc.ref} is quarantined: it cannot be read ({exc.reason})"
    if _wants_json(request):
        return JSONResponse({"detail": detail}, status_code=409)
    return Response(f"409: {detail}", status_code=409, media_type="text/plain")


class InternalErrorMiddleware:
    """Turns a crash into a bare 500 *inside* the security-headers middleware.

    Starlette's own handler for `Exception` runs outermost, where our headers would be missing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def track(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, track)
        except Exception as exc:
            # The type only: exception text can carry request data; the page says nothing.
            log.error("moderation.request_failed", path=scope.get("path"), error=type(exc).__name__)
            if started:
                raise
            api_call = str(scope.get("path", "")).startswith("/api/")
            response: Response = (
                JSONResponse({"detail": "internal error"}, status_code=500)
                if api_call
                else Response("500: internal error", status_code=500, media_type="text/plain")
            )
            await response(scope, receive, send)


def create_app(deps: ModerationDeps) -> Starlette:
    """The moderation app over `deps` (which the caller opened and will close)."""
    app = Starlette(
        routes=build_routes(),
        middleware=[
            Middleware(SecurityHeadersMiddleware, hsts=deps.settings.secure_cookies),
            Middleware(RequestMetricsMiddleware, metrics=deps.metrics),
            Middleware(InternalErrorMiddleware),
            Middleware(FlashMiddleware, store=deps.flash, cookie_name=deps.cookies.session_name),
            Middleware(
                BodyLimitMiddleware,
                max_bytes=deps.settings.max_body_bytes,
                anonymous_max_bytes=deps.settings.max_anonymous_body_bytes,
                anonymous_paths=ANONYMOUS_POSTS,
                max_seconds=deps.settings.max_body_seconds,
                upload_paths=UPLOAD_POSTS,
                upload_max_bytes=deps.settings.max_media_body_bytes,
                upload_max_seconds=deps.settings.max_media_body_seconds,
            ),
        ],
        exception_handlers={HTTPException: _http_error, UnreadableError: _unreadable},
    )
    app.state.deps = deps
    return app


get_application = create_app
