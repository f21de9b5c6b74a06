"""Accounts → "Connect an X account": scopes, the redirect to X, the callback, reconnect,
disconnect. Admins only (roles.ROUTE_RULES); every POST carries the CSRF token.

The session cookie is SameSite=Strict, so the browser does not send it on X's cross-site
redirect to `/accounts/x/callback`. That route is public and only forwards (a same-site
navigation, which does carry the cookie) to `/accounts/x/finish`, where the admin's session
is checked and the one-time `state` is bound to the admin who started the sign-in.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from twitstack.moderation.access import client_ip, deps_of, principal_of
from twitstack.moderation.flash import flash_redirect
from twitstack.moderation.views.render import render
from twitstack.moderation.x_accounts_ui import XAccountsUi
from twitstack.writes.x_accounts import ConnectedAccount, TokenHealth
from twitstack.writes.x_connect import SCOPE_GROUPS, ConnectError

SCOPE_CHOICES = (
    ("posting", "Post and delete posts (tweet.write)"),
    ("dms", "Send direct messages (dm.write)"),
    ("dm_read_back", "Read direct messages back, so unsure DM sends are reconciled (dm.read)"),
    ("media", "Upload media (media.write)"),
)
assert {name for name, _ in SCOPE_CHOICES} == set(SCOPE_GROUPS)


def _ui(request: Request) -> XAccountsUi | None:
    ui: XAccountsUi | None = getattr(deps_of(request), "x_accounts", None)
    return ui


def _actor(request: Request) -> str:
    return f"admin:{principal_of(request).user.username}"


async def _refresh_handles(request: Request, ui: XAccountsUi) -> None:
    shown = deps_of(request).templates.globals.get("x_handles")
    if isinstance(shown, dict):
        await ui.refresh_handles(shown)


def _refused(request: Request, message: str, status: int = 400) -> Response:
    return render(
        request, "x_connect_error.html", {"message": message, "nav": "accounts"},
        status_code=status,
    )  # fmt: skip


async def connected_rows(ui: XAccountsUi | None) -> list[tuple[ConnectedAccount, TokenHealth]]:
    """Every connected account with its token health, for the Accounts page."""
    if ui is None:
        return []
    return [(a, await ui.accounts.health(a.name)) for a in await ui.accounts.all()]


def groups_of(account: ConnectedAccount) -> list[str]:
    """The scope groups an account was granted, to ask for the same on reconnect."""
    return [g for g, scopes in SCOPE_GROUPS.items() if set(scopes) <= set(account.scopes)]


async def connect_page(request: Request) -> Response:
    """The form: a short label and the scopes to ask for."""
    return render(
        request, "x_connect.html",
        {"choices": SCOPE_CHOICES, "nav": "accounts", "enabled": _ui(request) is not None},
    )  # fmt: skip


async def _start(request: Request, name: str, groups: list[str]) -> Response:
    ui = _ui(request)
    if ui is None:
        return _refused(request, "Connecting accounts is not available in this process.", 503)
    try:
        connector = await ui.connector()
        started = await connector.start(name, groups, actor=_actor(request))
    except ConnectError as exc:
        return _refused(request, exc.message)
    await deps_of(request).audit.record(
        principal_of(request).user.username, "x_account.connect_started", name,
        {"scopes": groups}, ip=client_ip(request),
    )  # fmt: skip
    # A page that moves on, not a 303: CSP form-action 'self' stops a form's redirect to X.
    return forward_page(started.url, "Continuing to X…")


async def connect_submit(request: Request) -> Response:
    """Remember state and verifier, send the admin to X's consent page."""
    form = await request.form()
    groups = [str(g) for g in form.getlist("scope")]
    return await _start(request, str(form.get("name", "")).strip(), groups)


def forward_page(target: str, text: str) -> HTMLResponse:
    """A page that sends the browser on to `target` at once (with a link if it does not)."""
    url = escape(target, quote=True)
    body = (
        "<!doctype html><html><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="0;url={url}"><title>{escape(text)}</title></head>'
        f'<body><p>{escape(text)} <a href="{url}">continue</a></p></body></html>'
    )
    headers = {"cache-control": "no-store", "referrer-policy": "no-referrer"}
    return HTMLResponse(body, headers=headers)


async def callback(request: Request) -> Response:
    """Public landing for X's redirect: forward same-site so the session cookie is sent."""
    target = "/accounts/x/finish?" + urlencode(dict(request.query_params))
    return forward_page(target, "Finishing the connection…")


async def finish(request: Request) -> Response:
    """Exchange the code, check the account, store it; a clear page when refused."""
    ui = _ui(request)
    if ui is None:
        return _refused(request, "Connecting accounts is not available in this process.", 503)
    query = {k: v for k, v in request.query_params.items()}
    try:
        connector = await ui.connector()
        account, event, warning = await connector.finish(query, actor=_actor(request))
    except ConnectError as exc:
        await deps_of(request).audit.record(
            principal_of(request).user.username, "x_account.connect_refused", "",
            {"reason": exc.reason}, ip=client_ip(request),
        )  # fmt: skip
        return _refused(request, exc.message)
    await deps_of(request).audit.record(
        principal_of(request).user.username, f"x_account.{event}", f"@{account.username}",
        {"user_id": account.user_id, "label": account.name, "scopes": list(account.scopes)},
        ip=client_ip(request),
    )  # fmt: skip
    if warning is not None:
        deps_of(request).metrics.x_grant_revoke_failures.inc()
        await deps_of(request).audit.record(
            principal_of(request).user.username, "x_account.old_grant_not_revoked",
            f"@{account.username}", {"user_id": account.user_id, "x": warning},
            ip=client_ip(request),
        )  # fmt: skip
    await _refresh_handles(request, ui)
    verb = "Reconnected" if event == "reconnect" else "Connected"
    notice = f"{verb} @{account.username} as {account.name}."
    return flash_redirect("/accounts", notice=notice, error=f"{warning}." if warning else "")


async def reconnect_submit(request: Request) -> Response:
    """Sign in again for the same X account (same label, same scopes)."""
    ui = _ui(request)
    account = await ui.accounts.by_user_id(request.path_params["user_id"]) if ui else None
    if account is None:
        return flash_redirect("/accounts", error="That account is not connected.")
    return await _start(request, account.name, groups_of(account))


async def disconnect_submit(request: Request) -> Response:
    """Revoke at X and forget the account's credentials."""
    ui = _ui(request)
    if ui is None:
        return _refused(request, "Connecting accounts is not available in this process.", 503)
    try:
        connector = await ui.connector()
        account, outcome = await connector.disconnect(
            request.path_params["user_id"], actor=_actor(request)
        )
    except ConnectError as exc:
        return flash_redirect("/accounts", error=exc.message)
    await deps_of(request).audit.record(
        principal_of(request).user.username, "x_account.disconnect", f"@{account.username}",
        {"user_id": account.user_id, "label": account.name, "x": outcome},
        ip=client_ip(request),
    )  # fmt: skip
    await _refresh_handles(request, ui)
    return flash_redirect("/accounts", notice=f"Disconnected @{account.username} ({outcome}).")
