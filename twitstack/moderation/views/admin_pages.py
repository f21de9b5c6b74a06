"""Admin pages: users (create, role, disable, password), API keys and the audit log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from twitstack.moderation.access import client_ip, deps_of, principal_of
from twitstack.moderation.apikeys import ApiKeyError
from twitstack.moderation.audit import AuditEntry
from twitstack.moderation.flash import flash_redirect
from twitstack.moderation.pagination import PageParams, paginate
from twitstack.moderation.passwords import PasswordPolicyError
from twitstack.moderation.roles import SCOPES, Role
from twitstack.moderation.users import UserError
from twitstack.moderation.views.render import render


def _back(path: str, *, notice: str = "", error: str = "") -> RedirectResponse:
    return flash_redirect(path, notice=notice, error=error)


# SQLite's INTEGER: a larger id is none of ours (and sqlite3 raises OverflowError on it).
_MAX_ROW_ID = 2**63 - 1


def _row_id(text: object) -> int | None:
    try:
        value = int(str(text))
    except ValueError:
        return None
    return value if 1 <= value <= _MAX_ROW_ID else None


def _int_param(request: Request, name: str) -> int | None:
    return _row_id(request.path_params.get(name))


async def users_page(request: Request) -> Response:
    """All users, with forms to change them."""
    deps = deps_of(request)
    return render(
        request,
        "users.html",
        {
            "users": await deps.users.list(),
            "roles": list(Role),
            "nav": "users",
        },
    )


async def user_create(request: Request) -> Response:
    deps = deps_of(request)
    actor = principal_of(request).user.username
    form = await request.form()
    try:
        role = Role.parse(str(form.get("role", "")))
        user = await deps.users.create(
            str(form.get("username", "")), str(form.get("password", "")), role
        )
    except (UserError, PasswordPolicyError, ValueError) as exc:
        return _back("/users", error=str(exc))
    await deps.audit.record(
        actor, "user.create", user.username, {"role": role.label}, ip=client_ip(request)
    )
    return _back("/users", notice=f"Added {user.username} as {role.label}.")


async def user_role(request: Request) -> Response:
    deps = deps_of(request)
    actor = principal_of(request)
    user_id = _int_param(request, "user_id")
    form = await request.form()
    target = await deps.users.get(user_id) if user_id is not None else None
    if target is None:
        return _back("/users", error="No such user.")
    try:
        role = Role.parse(str(form.get("role", "")))
    except ValueError as exc:
        return _back("/users", error=str(exc))
    if target.id == actor.user.id and role < Role.ADMIN:
        return _back("/users", error="You cannot lower your own role.")
    await deps.users.set_role(target.id, role)
    await deps.audit.record(
        actor.user.username,
        "user.role",
        target.username,
        {"from": target.role.label, "to": role.label},
        ip=client_ip(request),
    )
    return _back("/users", notice=f"{target.username} is now {role.label}.")


async def _set_disabled(request: Request, disabled: bool) -> Response:
    deps = deps_of(request)
    actor = principal_of(request)
    user_id = _int_param(request, "user_id")
    target = await deps.users.get(user_id) if user_id is not None else None
    if target is None:
        return _back("/users", error="No such user.")
    if target.id == actor.user.id and disabled:
        return _back("/users", error="You cannot disable yourself.")
    await deps.users.set_disabled(target.id, disabled)
    action = "user.disable" if disabled else "user.enable"
    await deps.audit.record(actor.user.username, action, target.username, ip=client_ip(request))
    verb = "disabled" if disabled else "enabled"
    return _back("/users", notice=f"{target.username} {verb}.")


async def user_disable(request: Request) -> Response:
    return await _set_disabled(request, True)


async def user_enable(request: Request) -> Response:
    return await _set_disabled(request, False)


async def user_password(request: Request) -> Response:
    deps = deps_of(request)
    actor = principal_of(request)
    user_id = _int_param(request, "user_id")
    target = await deps.users.get(user_id) if user_id is not None else None
    if target is None:
        return _back("/users", error="No such user.")
    form = await request.form()
    try:
        await deps.users.set_password(target.id, str(form.get("password", "")))
    except (UserError, PasswordPolicyError) as exc:
        return _back("/users", error=str(exc))
    await deps.audit.record(
        actor.user.username, "user.password_reset", target.username, ip=client_ip(request)
    )
    return _back("/users", notice=f"Password of {target.username} reset; their sessions ended.")


class _AuditQueryset:
    def __init__(self, request: Request) -> None:
        self._audit = deps_of(request).audit
        self.action = request.query_params.get("action") or None
        self.actor = request.query_params.get("actor") or None

    async def count(self) -> int:
        if self.actor:
            # Rare filter; an exact count is cheap enough on an indexed table of this size.
            rows = await self._audit.page(
                limit=1_000_000, offset=0, action=self.action, actor=self.actor
            )
            return len(rows)
        return await self._audit.count(action=self.action)

    async def fetch(self, limit: int, offset: int) -> list[AuditEntry]:
        return await self._audit.page(
            limit=limit, offset=offset, action=self.action, actor=self.actor
        )


async def audit_page(request: Request) -> Response:
    """The audit log, newest first."""
    queryset = _AuditQueryset(request)
    params = PageParams.from_query(request.query_params, default_size=100)
    page = await paginate(queryset, params)
    return render(
        request,
        "audit.html",
        {
            "page": page,
            "filters": {"action": queryset.action or "", "actor": queryset.actor or ""},
            "nav": "audit",
        },
    )


async def _apikeys_view(request: Request, *, new_key: str = "", error: str = "") -> Response:
    deps = deps_of(request)
    users = await deps.users.list()
    return render(
        request,
        "apikeys.html",
        {
            "keys": await deps.apikeys.list(),
            "users": [u for u in users if not u.disabled],
            "owners": {u.id: u.username for u in users},
            "scopes": SCOPES,
            "new_key": new_key,
            "error": error,
            "nav": "apikeys",
        },
    )


async def apikeys_page(request: Request) -> Response:
    """API keys and a form to create one."""
    return await _apikeys_view(request)


async def apikey_create(request: Request) -> Response:
    """Create a key and show it once (on this response only)."""
    deps = deps_of(request)
    actor = principal_of(request).user.username
    form = await request.form()
    owner_id = _row_id(form.get("owner", ""))
    if owner_id is None:
        return await _apikeys_view(request, error="Choose an owner.")
    owner = await deps.users.get(owner_id)
    if owner is None or owner.disabled:
        return await _apikeys_view(request, error="Choose an active owner.")
    scopes = [str(s) for s in form.getlist("scopes")]
    try:
        plaintext, key = await deps.apikeys.create(owner.id, str(form.get("name", "")), scopes)
    except ApiKeyError as exc:
        return await _apikeys_view(request, error=str(exc))
    await deps.audit.record(
        actor,
        "apikey.create",
        f"{key.name} (tsk_{key.prefix})",
        {"owner": owner.username, "scopes": " ".join(key.scopes)},
        ip=client_ip(request),
    )
    return await _apikeys_view(request, new_key=plaintext)


async def apikey_revoke(request: Request) -> Response:
    deps = deps_of(request)
    actor = principal_of(request).user.username
    key_id = _int_param(request, "key_id")
    key = await deps.apikeys.get(key_id) if key_id is not None else None
    if key is None:
        return _back("/apikeys", error="No such key.")
    if await deps.apikeys.revoke(key.id):
        await deps.audit.record(
            actor, "apikey.revoke", f"{key.name} (tsk_{key.prefix})", ip=client_ip(request)
        )
    return _back("/apikeys", notice=f"Key {key.name} revoked.")
