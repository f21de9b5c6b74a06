"""Every route × every role against the single declared table (deny by default)."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from tests.moderation.harness import Harness
from twitstack.moderation.access import guarded
from twitstack.moderation.app import build_routes
from twitstack.moderation.roles import ROUTE_RULES, Role, rule_for

pytestmark = pytest.mark.anyio
CALLERS: tuple[Role | None, ...] = (None, Role.VIEWER, Role.AUTHOR, Role.MODERATOR, Role.ADMIN)


def declared_routes(app: Starlette) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves."""
    found = []
    for route in app.routes:
        if isinstance(route, Route):
            found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
        elif isinstance(route, Mount):
            found.append(("GET", route.path))
    return found


def test_every_route_is_in_the_table() -> None:
    """A route added without a rule fails here (and is denied at runtime)."""
    served = declared_routes(Starlette(routes=build_routes()))
    missing = [r for r in served if rule_for(*r) is None]
    assert missing == []
    assert set(served) == set(ROUTE_RULES), "table lists routes the app does not serve"


async def test_a_route_missing_from_the_table_is_denied() -> None:
    async def endpoint(_: Request) -> Response:
        return PlainTextResponse("should never be reached")

    app = Starlette(routes=[Route("/undeclared", guarded("/undeclared", endpoint))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        response = await client.get("/undeclared")
    assert response.status_code == 403


def _concrete(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    if path == "/static":
        return "/static/app.css"
    return path


def _denied(response: httpx.Response) -> bool:
    if response.status_code in (401, 403):
        return True
    # The guard sends anonymous page requests to /login?next=...; logout goes to plain /login.
    return response.status_code == 303 and response.headers["location"].startswith("/login?next=")


async def test_role_matrix_matches_the_table(mod: Harness) -> None:
    """Each caller gets in exactly where the table says, for every route."""
    users = {role: await mod.add_user(f"u-{role.label}", role) for role in Role}
    target_user = await mod.add_user("target", Role.VIEWER)
    ids = {
        "request_id": await mod.pending(author="nobody"),
        "user_id": str(target_user),
        "entry_id": "0000000000000000",
        "key_id": "999",
    }
    checked = 0
    for method, template in declared_routes(mod.app):
        rule = rule_for(method, template)
        assert rule is not None
        path = _concrete(template, ids)
        for caller in CALLERS:
            async with mod.client() as client:
                headers = {"content-type": "application/x-www-form-urlencoded"}
                if caller is not None:
                    token, session = await mod.deps.sessions.create(users[caller])
                    client.cookies.set("__Host-twitstack", token)
                    headers["x-csrf-token"] = session.csrf_token
                else:
                    # The pre-login double-submit token, so only the role decides.
                    client.cookies.set("__Host-twitstack-csrf", "pre-login-token")
                    headers["x-csrf-token"] = "pre-login-token"
                response = await client.request(method, path, headers=headers, content=b"")
            allowed = rule.role is None or (caller is not None and caller >= rule.role)
            where = f"{method} {template} as {caller.label if caller else 'anonymous'}"
            if allowed:
                assert response.status_code != 403, where
                if rule.role is not None:
                    assert not _denied(response), f"{where}: {response.status_code}"
            else:
                assert _denied(response), f"{where}: {response.status_code}"
            checked += 1
    assert checked == len(ROUTE_RULES) * len(CALLERS)


async def test_token_scopes_limit_api_routes(mod: Harness) -> None:
    """A read-only key's token cannot create, approve or reject, whatever its owner's role."""
    await mod.add_user("boss", Role.ADMIN)
    request_id = await mod.pending(author="someone")
    token = await mod.bearer("boss", ("read",))
    auth = {"authorization": f"Bearer {token}"}
    async with mod.client() as client:
        listing = await client.get("/api/requests", headers=auth)
        create = await client.post(
            "/api/requests", json={"action": "tweet", "payload": {"text": "x"}}, headers=auth
        )
        approve = await client.post(
            f"/api/requests/{request_id}/approve", json={"revision": 1}, headers=auth
        )
    assert listing.status_code == 200
    assert listing.json()["total"] == 1
    assert (create.status_code, approve.status_code) == (403, 403)


async def test_revoked_key_stops_its_tokens_on_the_next_request(mod: Harness) -> None:
    await mod.add_user("bot", Role.AUTHOR)
    plaintext, key = await mod.deps.apikeys.create(mod.users["bot"], "bot", ["read"])
    async with mod.client() as client:
        issued = await client.post("/api/auth/token", json={"api_key": plaintext})
        assert issued.status_code == 200
        auth = {"authorization": f"Bearer {issued.json()['access_token']}"}
        assert (await client.get("/api/requests", headers=auth)).status_code == 200
        await mod.deps.apikeys.revoke(key.id)
        assert (await client.get("/api/requests", headers=auth)).status_code == 401
        again = await client.post("/api/auth/token", json={"api_key": plaintext})
    assert again.status_code == 401
