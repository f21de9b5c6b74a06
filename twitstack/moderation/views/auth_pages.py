"""Login and logout pages: throttled password checks, session rotation, audited outcomes."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from twitstack.core.logging import get_logger
from twitstack.moderation.access import client_ip, deps_of
from twitstack.moderation.deps import ModerationDeps
from twitstack.moderation.views.render import render

log = get_logger("twitstack.moderation.auth")


def _safe_next(value: str | None) -> str:
    # Only local paths: an open redirect after login is a phishing aid.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/queue"


def set_session_cookie(response: Response, deps: ModerationDeps, token: str) -> None:
    response.set_cookie(
        deps.cookies.session_name,
        token,
        max_age=deps.settings.session_absolute_timeout_s,
        path="/",
        secure=deps.settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )


def _login_form(
    request: Request, *, error: str = "", username: str = "", status_code: int = 200
) -> Response:
    deps = deps_of(request)
    # Pre-login CSRF: a double-submit token, since there is no session to bind it to yet;
    # someone already logged in (switching users) submits their session's token instead.
    principal = request.state.principal
    cookie_token = request.cookies.get(deps.cookies.csrf_name) or secrets.token_urlsafe(32)
    token = principal.session.csrf_token if principal and principal.session else cookie_token
    response = render(
        request,
        "login.html",
        {
            "csrf_token": token,
            "next_url": _safe_next(request.query_params.get("next")),
            "error": error,
            "username": username,
            # A fixed sentence behind a flag: the query string never chooses the words.
            "logged_out": request.query_params.get("logged_out") == "1" and principal is None,
        },
        status_code=status_code,
    )
    response.set_cookie(
        deps.cookies.csrf_name,
        cookie_token,
        path="/",
        secure=deps.settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


async def login_page(request: Request) -> Response:
    """The login form."""
    return _login_form(request)


async def login_submit(request: Request) -> Response:
    """Check the password (if the throttle allows), rotate the session, go on."""
    deps = deps_of(request)
    form = await request.form()
    # One normalisation for the throttle, the lookup and the audit trail alike.
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))
    ip = client_ip(request)
    decision = deps.throttle.acquire(username, ip)
    if not decision.allowed:
        deps.metrics.login_failures.labels(reason="throttled").inc()
        if decision.audit:
            # One row per throttled key and window (with the count it stands for): an
            # attacker must not be able to drive one fsync'd insert per request.
            await deps.audit.record(
                username or "-",
                "login.throttled",
                username,
                {"suppressed_since_last": decision.suppressed},
                ip=ip,
            )
            log.info("moderation.login_throttled", username=username, ip=ip)
        response = _login_form(
            request,
            error=f"Too many failed attempts. Try again in {decision.retry_after_s} seconds.",
            username=username,
            status_code=429,
        )
        response.headers["retry-after"] = str(decision.retry_after_s)
        return response
    found = await deps.users.password_hash(username) if username else None
    result = await deps.passwords.verify(found[1] if found else None, password)
    if not result.ok or found is None or found[0].disabled:
        deps.metrics.login_failures.labels(reason="bad_credentials").inc()
        await deps.audit.record(username or "-", "login.failed", username, ip=ip)
        log.info("moderation.login_failed", username=username, ip=ip)
        return _login_form(
            request, error="Wrong username or password.", username=username, status_code=401
        )
    user = found[0]
    deps.throttle.record_success(username, ip, decision.attempt)
    if result.new_hash is not None:
        await deps.users.store_rehash(user.id, result.new_hash)
    # Rotation: whatever session id the browser had is ended, and a new one issued.
    previous = request.cookies.get(deps.cookies.session_name)
    if previous:
        old = await deps.sessions.resolve(previous)
        if old is not None:
            await deps.sessions.end(old.id_hash)
    token, _ = await deps.sessions.create(user.id)
    await deps.audit.record(user.username, "login", user.username, ip=ip)
    log.info("moderation.logged_in", username=user.username, ip=ip)
    response = RedirectResponse(_safe_next(str(form.get("next", ""))), status_code=303)
    set_session_cookie(response, deps, token)
    response.delete_cookie(deps.cookies.csrf_name, path="/", secure=deps.settings.secure_cookies)
    return response


async def logout(request: Request) -> Response:
    """End the session server-side, so a captured cookie is worthless."""
    deps = deps_of(request)
    principal = request.state.principal
    if principal is not None and principal.session is not None:
        await deps.sessions.end(principal.session.id_hash)
        await deps.audit.record(
            principal.user.username, "logout", principal.user.username, ip=client_ip(request)
        )
    response = RedirectResponse("/login?logged_out=1", status_code=303)
    response.delete_cookie(deps.cookies.session_name, path="/", secure=deps.settings.secure_cookies)
    return response
