"""Sessions, CSRF, headers and login throttling over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.moderation.harness import PASSWORD, Harness, csrf_from, open_harness
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.roles import Role

pytestmark = pytest.mark.anyio


async def test_login_sets_a_host_prefixed_strict_secure_cookie(mod: Harness) -> None:
    await mod.add_user("alice", Role.MODERATOR)
    async with mod.client() as client:
        page = await client.get("/login")
        response = await client.post(
            "/login",
            data={"username": "alice", "password": PASSWORD, "csrf_token": csrf_from(page.text)},
        )
    assert response.status_code == 303
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and "__Host-twitstack=" in v
    )
    lowered = cookie.lower()
    assert "secure" in lowered
    assert "httponly" in lowered
    assert "samesite=strict" in lowered
    assert "path=/" in lowered
    assert "domain" not in lowered


async def test_logout_makes_the_captured_cookie_worthless(mod: Harness) -> None:
    """Replaying a cookie captured before logout is refused (server-side sessions)."""
    await mod.add_user("alice", Role.MODERATOR)
    async with mod.client() as client:
        csrf = await mod.login(client, "alice")
        captured = client.cookies.get("__Host-twitstack")
        assert captured
        response = await client.post("/logout", data={"csrf_token": csrf})
        assert response.status_code == 303
    async with mod.client() as replay:
        replay.cookies.set("__Host-twitstack", captured)
        response = await replay.get("/queue")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    assert await mod.deps.audit.count(action="logout") == 1


async def test_login_rotates_the_session_id(mod: Harness) -> None:
    """A session id known before login (fixation) is ended and replaced."""
    await mod.add_user("alice", Role.VIEWER)
    async with mod.client() as client:
        await mod.login(client, "alice")
        first = client.cookies.get("__Host-twitstack")
        await mod.login(client, "alice")
        second = client.cookies.get("__Host-twitstack")
    assert first
    assert second
    assert first != second
    assert await mod.deps.sessions.resolve(first) is None
    assert await mod.deps.sessions.resolve(second) is not None


async def test_unsafe_methods_without_csrf_token_are_forbidden(mod: Harness) -> None:
    await mod.add_user("admin", Role.ADMIN)
    async with mod.client() as client:
        csrf = await mod.login(client, "admin")
        no_token = await client.post("/users", data={"username": "x", "password": "y" * 12})
        wrong = await client.post("/users", data={"csrf_token": "nope", "username": "x"})
        cross = await client.post(
            "/users",
            data={"csrf_token": csrf, "username": "x", "password": PASSWORD, "role": "viewer"},
            headers={"sec-fetch-site": "cross-site"},
        )
        ok = await client.post(
            "/users",
            data={"csrf_token": csrf, "username": "x", "password": PASSWORD, "role": "viewer"},
        )
        anonymous_login = await mod.client().post(
            "/login", data={"username": "admin", "password": PASSWORD}
        )
    assert (no_token.status_code, wrong.status_code, cross.status_code) == (403, 403, 403)
    assert ok.status_code == 303
    assert anonymous_login.status_code == 403
    assert await mod.deps.users.by_name("x") is not None


async def test_brute_force_reaches_argon2_at_most_the_allowed_times(mod: Harness) -> None:
    """100 wrong passwords: at most 10 are checked; the rest get 429; no permanent lockout."""
    await mod.add_user("alice", Role.VIEWER)
    before = mod.deps.passwords.verifications
    statuses = []
    async with mod.client() as client:
        page = await client.get("/login")
        token = csrf_from(page.text)
        for _ in range(100):
            response = await client.post(
                "/login",
                data={"username": "alice", "password": "wrong-password!", "csrf_token": token},
            )
            statuses.append(response.status_code)
    assert mod.deps.passwords.verifications - before <= 10
    assert statuses.count(401) == 10
    assert statuses.count(429) == 90
    mod.clock.advance(mod.deps.settings.login_window_s + 1)
    async with mod.client() as client:
        await mod.login(client, "alice")  # works again after the window


async def test_security_headers_on_pages_errors_and_json(mod: Harness) -> None:
    async with mod.client() as client:
        responses = [
            await client.get("/login"),
            await client.get("/healthz"),
            await client.get("/no-such-page"),
            await client.get("/queue"),
            await client.get("/api/requests"),
        ]
    for response in responses:
        csp = response.headers["content-security-policy"]
        assert "object-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "base-uri 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert [r.status_code for r in responses] == [200, 200, 404, 303, 401]


async def test_healthz_and_readyz(mod: Harness) -> None:
    async with mod.client() as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": "ok", "database": "ok"}


async def test_disabling_a_user_ends_their_open_session(mod: Harness) -> None:
    await mod.add_user("admin", Role.ADMIN)
    bob = await mod.add_user("bob", Role.MODERATOR)
    async with mod.client() as admin, mod.client() as victim:
        csrf = await mod.login(admin, "admin")
        await mod.login(victim, "bob")
        assert (await victim.get("/queue")).status_code == 200
        response = await admin.post(f"/users/{bob}/disable", data={"csrf_token": csrf})
        assert response.status_code == 303
        assert (await victim.get("/queue")).status_code == 303


def _client_at(mod: Harness, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=mod.app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


async def test_ui_port_metrics_only_for_allowed_networks(mod: Harness) -> None:
    """Loopback by default; a remote peer, or a relayed request nobody trusts, gets 403."""
    async with _client_at(mod, "127.0.0.1") as local, _client_at(mod, "192.0.2.7") as remote:
        own = await local.get("/metrics")
        relayed = await local.get("/metrics", headers={"x-forwarded-for": "192.0.2.7"})
        outside = await remote.get("/metrics")
    assert own.status_code == 200
    assert "moderation_http_requests_total" in own.text
    assert (relayed.status_code, outside.status_code) == (403, 403)
    assert "moderation_http_requests_total" not in outside.text + relayed.text


async def test_metrics_network_and_trusted_proxy_are_explicit_settings(
    redis_url: str, tmp_path: Path, fast_passwords: PasswordService
) -> None:
    async with (
        open_harness(
            redis_url,
            tmp_path,
            fast_passwords,
            metrics_allowed_networks=["10.1.0.0/16"],
            trusted_proxies=["127.0.0.1"],
        ) as mod,
        _client_at(mod, "127.0.0.1") as proxy,
        _client_at(mod, "10.1.2.3") as prom,
    ):
        via_proxy = await proxy.get("/metrics", headers={"x-forwarded-for": "10.1.9.9"})
        direct = await prom.get("/metrics")
        other = await proxy.get("/metrics", headers={"x-forwarded-for": "203.0.113.1"})
        local = await proxy.get("/metrics")
    assert (via_proxy.status_code, direct.status_code) == (200, 200)
    assert (other.status_code, local.status_code) == (403, 403)


async def test_notice_and_error_in_the_query_string_are_not_shown(mod: Harness) -> None:
    """A crafted link cannot make a page say anything: messages come from the server only."""
    await mod.add_user("mia", Role.MODERATOR)
    async with mod.client() as client:
        await mod.login(client, "mia")
        page = await client.get(
            "/queue", params={"notice": "Approved. Now approve req-42 too", "error": "Call 555"}
        )
    assert page.status_code == 200
    assert "approve req-42" not in page.text
    assert "Call 555" not in page.text


async def test_a_flash_message_is_shown_once_to_its_own_session(mod: Harness) -> None:
    await mod.add_user("mia", Role.MODERATOR)
    await mod.add_user("raj", Role.MODERATOR)
    request_id = await mod.pending(author="bot", text="hello")
    async with mod.client() as mia, mod.client() as raj:
        csrf = await mod.login(mia, "mia")
        await mod.login(raj, "raj")
        rejected = await mia.post(
            f"/requests/{request_id}/reject", data={"csrf_token": csrf, "reason": "no"}
        )
        assert rejected.status_code == 303
        assert "?" not in rejected.headers["location"]
        assert "x-twitstack-flash" not in rejected.headers
        other_session = await raj.get("/queue")
        first = await mia.get(rejected.headers["location"])
        second = await mia.get(rejected.headers["location"])
    assert "Rejected «hello»." in first.text
    assert "Rejected «hello»." not in second.text
    assert "Rejected «hello»." not in other_session.text


@pytest.mark.parametrize("path", ["/users", "/apikeys", "/queue", "/history", "/dead-letters"])
async def test_no_page_shows_an_error_from_the_query_string(mod: Harness, path: str) -> None:
    await mod.add_user("root", Role.ADMIN)
    async with mod.client() as client:
        await mod.login(client, "root")
        page = await client.get(
            path, params={"error": "Session expired, call 555", "notice": "x1y2"}
        )
    assert page.status_code == 200
    assert "call 555" not in page.text
    assert '<p class="notice"' not in page.text
    assert '<p class="error"' not in page.text
