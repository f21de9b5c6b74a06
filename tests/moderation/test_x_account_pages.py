"""Accounts → Connect an X account, through the pages, against the fake X (in process)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import unescape
from urllib.parse import urlsplit

import httpx
import pytest

from tests.moderation.harness import BASE_URL, Harness
from twitstack.core.sealing import SealingKeyRing, generate_key_ring
from twitstack.core.sections.writer import WriterSettings
from twitstack.moderation.roles import Role
from twitstack.moderation.x_accounts_ui import XAccountsUi
from twitstack.sandbox.xapi import DEFAULT_CLIENT_ID, XApiSandboxConfig, XApiState, create_xapi_app
from twitstack.sandbox.xapi.config import Endpoint, FaultKind
from twitstack.sandbox.xapi.faults import ScriptEntry
from twitstack.writes import keys
from twitstack.writes.token_store import SealedTokenStore
from twitstack.writes.x_accounts import ConnectedAccounts

pytestmark = pytest.mark.anyio

X = "https://sandbox.test"
RING = SealingKeyRing.parse(generate_key_ring("k1"), source="test")
_REFRESH = re.compile(r'http-equiv="refresh" content="0;url=([^"]+)"')


@pytest.fixture
async def x(mod: Harness) -> AsyncIterator[tuple[Harness, XApiState, httpx.AsyncClient]]:
    state = XApiState(XApiSandboxConfig(clock_start=1_800_000_000.0, clock_frozen=True))
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url=X) as http:

        async def ring() -> SealingKeyRing:
            return RING

        async def no_secret(name: str) -> str | None:
            return None

        writer = WriterSettings(
            x_api_base_url=X, x_authorize_url=f"{X}/i/oauth2/authorize",
            oauth2_client_id=DEFAULT_CLIENT_ID,
            oauth2_redirect_uri=f"{BASE_URL}/accounts/x/callback",
        )  # fmt: skip
        accounts = ConnectedAccounts(mod.redis, SealedTokenStore(mod.redis, ring))
        mod.deps.x_accounts = XAccountsUi(accounts, writer, mod.redis, http, no_secret)
        yield mod, state, http


@asynccontextmanager
async def admin(mod: Harness) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    await mod.add_user("root", Role.ADMIN)
    async with mod.client() as client:
        yield client, await mod.login(client, "root")


async def start(client: httpx.AsyncClient, csrf: str, name: str = "brand") -> httpx.Response:
    return await client.post(
        "/accounts/x/connect", data={"csrf_token": csrf, "name": name, "scope": ["posting"]}
    )


def forwarded(response: httpx.Response) -> str:
    """Where a forwarding page sends the browser."""
    assert response.status_code == 200, response.text
    found = _REFRESH.search(response.text)
    assert found is not None
    return unescape(found.group(1))


async def through_x(x_http: httpx.AsyncClient, client: httpx.AsyncClient, url: str) -> str:
    """The browser at X (auto-consent), back on our callback; returns the finish URL."""
    consent = await x_http.get(url)
    assert consent.status_code == 302
    back = urlsplit(consent.headers["location"])
    return forwarded(await client.get(f"{back.path}?{back.query}"))


async def test_admin_connects_reconnects_and_disconnects(x: tuple) -> None:  # type: ignore[type-arg]
    """The whole flow through the pages; the account shows by handle with its health."""
    mod, _, x_http = x
    async with admin(mod) as (client, csrf):
        url = forwarded(await start(client, csrf))
        assert url.startswith(f"{X}/i/oauth2/authorize?")
        assert "code_challenge_method=S256" in url
        finish = await through_x(x_http, client, url)
        done = await client.get(finish)
        assert done.status_code == 303
        page = (await client.get("/accounts")).text
        assert "@twitstack_demo" in page
        assert "Connected @twitstack_demo as brand." in page
        assert "reconnect needed" not in page
        first = await mod.redis.get(keys.sealed_oauth2_tokens("brand"))

        again = await client.post("/accounts/x/1000/reconnect", data={"csrf_token": csrf})
        done = await client.get(await through_x(x_http, client, forwarded(again)))
        assert done.status_code == 303
        assert "Reconnected @twitstack_demo" in (await client.get("/accounts")).text
        assert await mod.redis.get(keys.sealed_oauth2_tokens("brand")) != first

        gone = await client.post("/accounts/x/1000/disconnect", data={"csrf_token": csrf})
        assert gone.status_code == 303
        page = (await client.get("/accounts")).text
        assert "Disconnected @twitstack_demo (revoked at X)." in page
        assert await mod.redis.exists(keys.sealed_oauth2_tokens("brand")) == 0
    actions = [entry.action for entry in await mod.deps.audit.page(limit=50, offset=0)]
    for action in ("x_account.connect", "x_account.reconnect", "x_account.disconnect"):
        assert action in actions


async def test_reused_callback_gets_a_clear_page_and_changes_nothing(x: tuple) -> None:  # type: ignore[type-arg]
    """A second use of the same state: 400 with a readable reason, tokens unchanged."""
    mod, _, x_http = x
    async with admin(mod) as (client, csrf):
        finish = await through_x(x_http, client, forwarded(await start(client, csrf)))
        assert (await client.get(finish)).status_code == 303
        before = await mod.redis.get(keys.sealed_oauth2_tokens("brand"))
        again = await client.get(finish)
        assert again.status_code == 400
        assert "unknown, expired or was already used" in again.text
        assert "unchanged" in again.text
        assert await mod.redis.get(keys.sealed_oauth2_tokens("brand")) == before


async def test_denied_consent_gets_a_clear_page(x: tuple) -> None:  # type: ignore[type-arg]
    """The user pressed Cancel at X."""
    mod, _, x_http = x
    await x_http.put("/_sandbox/oauth2/consent", json={"decision": "deny"})
    async with admin(mod) as (client, csrf):
        finish = await through_x(x_http, client, forwarded(await start(client, csrf)))
        refused = await client.get(finish)
    assert refused.status_code == 400
    assert "consent was denied on X" in refused.text
    assert await mod.redis.hlen(keys.X_ACCOUNTS) == 0


async def test_expired_code_shows_x_message(x: tuple) -> None:  # type: ignore[type-arg]
    """More than 30 seconds between consent and exchange: X's words on the page."""
    mod, state, x_http = x
    async with admin(mod) as (client, csrf):
        finish = await through_x(x_http, client, forwarded(await start(client, csrf)))
        state.clock.advance(31)
        refused = await client.get(finish)
    assert refused.status_code == 400
    assert "authorization code was invalid" in refused.text


async def test_connect_needs_admin_and_csrf(x: tuple) -> None:  # type: ignore[type-arg]
    """A moderator is refused; an admin without the CSRF token is refused."""
    mod, _, _ = x
    await mod.add_user("mo", Role.MODERATOR)
    async with mod.client() as client:
        csrf = await mod.login(client, "mo")
        assert (await start(client, csrf)).status_code == 403
    async with admin(mod) as (root, _):
        assert (await start(root, "wrong")).status_code == 403
    assert await mod.redis.hlen(keys.X_ACCOUNTS) == 0


async def test_finish_needs_the_admin_who_started(x: tuple) -> None:  # type: ignore[type-arg]
    """Another admin's session cannot complete someone else's sign-in."""
    mod, _, x_http = x
    await mod.add_user("other", Role.ADMIN)
    async with admin(mod) as (client, csrf), mod.client() as other:
        await mod.login(other, "other")
        finish = await through_x(x_http, client, forwarded(await start(client, csrf)))
        refused = await other.get(finish)
    assert refused.status_code == 400
    assert "started by someone else" in refused.text


async def test_queue_and_detail_show_the_handle_beside_the_label(x: tuple) -> None:  # type: ignore[type-arg]
    """Once connected, requests for the label show @handle with the label small beside it."""
    mod, _, x_http = x
    async with admin(mod) as (client, csrf):
        finish = await through_x(x_http, client, forwarded(await start(client, csrf)))
        assert (await client.get(finish)).status_code == 303
        request_id = await mod.pending(text="for the brand", account="brand")
        queue = (await client.get("/queue")).text
        assert '<bdi>@twitstack_demo</bdi> <small class="muted">brand</small>' in queue
        detail = (await client.get(f"/requests/{request_id}")).text
        assert '<bdi>@twitstack_demo</bdi> <small class="muted">brand</small>' in detail


async def test_accounts_page_shows_reconnect_needed_with_x_message(x: tuple) -> None:  # type: ignore[type-arg]
    """What the writer recorded after X refused the refresh token, on the page, with X's words."""
    mod, _, _ = x
    await mod.redis.hset(
        keys.oauth2_tokens("default"),
        mapping={"expires_at": "1800000000", "refreshed_at": "1799990000",
                 "reconnect_needed": "1",
                 "reconnect_reason": "token endpoint answered 400, invalid_request: Value "
                 "passed for the token was invalid."},
    )  # fmt: skip
    async with admin(mod) as (client, _):
        page = (await client.get("/accounts")).text
    assert "reconnect needed" in page
    assert "Value passed for the token was invalid." in page
    assert "Last refresh" in page


async def test_new_request_form_suggests_connected_labels(x: tuple) -> None:  # type: ignore[type-arg]
    """The account field of the New page offers a connected account's label."""
    mod, _, x_http = x
    async with admin(mod) as (client, csrf):
        finish = await through_x(x_http, client, forwarded(await start(client, csrf)))
        assert (await client.get(finish)).status_code == 303
        page = (await client.get("/requests/new")).text
    assert '<option value="brand">' in page


def revoke_failures(mod: Harness) -> float:
    value = mod.deps.registry.get_sample_value("moderation_x_grant_revoke_failures_total")
    assert value is not None
    return value


async def test_reconnect_whose_revoke_fails_is_kept_and_the_admin_told(x: tuple) -> None:  # type: ignore[type-arg]
    """X answers 503 to the revoke of the replaced grant: the reconnect stands, the page says
    the old grant is still alive and where to revoke it, audited and counted."""
    mod, state, x_http = x
    async with admin(mod) as (client, csrf):
        assert (await client.get(await through_x(x_http, client, forwarded(
            await start(client, csrf))))).status_code == 303  # fmt: skip
        first = await mod.redis.get(keys.sealed_oauth2_tokens("brand"))
        state.faults.script(Endpoint.OAUTH2_REVOKE, [ScriptEntry(fault=FaultKind.ERROR_503)] * 2)
        before = revoke_failures(mod)
        again = await client.post("/accounts/x/1000/reconnect", data={"csrf_token": csrf})
        done = await client.get(await through_x(x_http, client, forwarded(again)))
        assert done.status_code == 303
        page = unescape((await client.get("/accounts")).text)
        assert "Reconnected @twitstack_demo as brand." in page
        assert "old grant not revoked: refresh token: X answered 503" in page
        assert "revoke it in the account's X settings." in page
        assert await mod.redis.get(keys.sealed_oauth2_tokens("brand")) != first
    assert revoke_failures(mod) == before + 1
    entries = await mod.deps.audit.page(limit=50, offset=0)
    warned = [e for e in entries if e.action == "x_account.old_grant_not_revoked"]
    assert len(warned) == 1
    assert "X answered 503" in warned[0].detail["x"]
    stream = await mod.deps.x_accounts.accounts.recent_audit()
    assert stream[0]["event"] == "old_grant_not_revoked"


async def test_reconnect_revokes_the_old_grant_without_a_warning(x: tuple) -> None:  # type: ignore[type-arg]
    """The ordinary reconnect: no warning on the page, nothing counted."""
    mod, _, x_http = x
    async with admin(mod) as (client, csrf):
        await client.get(await through_x(x_http, client, forwarded(await start(client, csrf))))
        before = revoke_failures(mod)
        again = await client.post("/accounts/x/1000/reconnect", data={"csrf_token": csrf})
        await client.get(await through_x(x_http, client, forwarded(again)))
        page = (await client.get("/accounts")).text
    assert "Reconnected @twitstack_demo as brand." in page
    assert "not revoked" not in page
    assert revoke_failures(mod) == before
    stream = await mod.deps.x_accounts.accounts.recent_audit()
    assert stream[0]["event"] == "old_grant_revoked"
