"""Connecting X accounts against the fake X: connect, reconnect, disconnect, every refusal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from twitstack.core.sealing import SealingKeyRing, generate_key_ring
from twitstack.sandbox.xapi import DEFAULT_CLIENT_ID, XApiSandboxConfig, XApiState, create_xapi_app
from twitstack.sandbox.xapi.config import Endpoint, FaultKind
from twitstack.sandbox.xapi.faults import ScriptEntry
from twitstack.writes import keys
from twitstack.writes.token_store import SealedTokenStore
from twitstack.writes.x_accounts import ConnectedAccounts
from twitstack.writes.x_connect import ConnectConfig, ConnectError, Finished, XConnector
from twitstack.writes.x_oauth import XOAuthClient

pytestmark = pytest.mark.anyio

BASE = "https://sandbox.test"
REDIRECT = "https://moderation.test/accounts/x/callback"
RING = SealingKeyRing.parse(generate_key_ring("k1"), source="test")


@dataclass
class Kit:
    connector: XConnector
    accounts: ConnectedAccounts
    state: XApiState
    http: httpx.AsyncClient
    redis: Redis


@pytest.fixture
async def kit(redis: Redis) -> AsyncIterator[Kit]:
    state = XApiState(XApiSandboxConfig(clock_start=1_800_000_000.0, clock_frozen=True))
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:

        async def ring() -> SealingKeyRing:
            return RING

        accounts = ConnectedAccounts(redis, SealedTokenStore(redis, ring))
        oauth = XOAuthClient(http, api_base=BASE, client_id=DEFAULT_CLIENT_ID, client_secret=None)
        config = ConnectConfig(
            DEFAULT_CLIENT_ID, None, f"{BASE}/i/oauth2/authorize", BASE, REDIRECT
        )
        connector = XConnector(redis, accounts, oauth, config, configured=["toml"])
        yield Kit(connector, accounts, state, http, redis)


async def consent(kit: Kit, url: str) -> dict[str, str]:
    """What the browser does: open X's page, follow its redirect back to us."""
    response = await kit.http.get(url)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    return dict(parse_qsl(urlsplit(location).query))


async def connect(kit: Kit, name: str = "brand", groups: tuple[str, ...] = ("posting",)) -> None:
    started = await kit.connector.start(name, groups, actor="admin:alice")
    await kit.connector.finish(await consent(kit, started.url), actor="admin:alice")


async def test_connect_stores_account_by_user_id_with_sealed_tokens(kit: Kit) -> None:
    """The account is keyed by X user id, named by handle, its pair sealed; all audited."""
    started = await kit.connector.start("brand", ["posting", "dm_read_back"], actor="admin:alice")
    query = dict(parse_qsl(urlsplit(started.url).query))
    assert query["code_challenge_method"] == "S256"
    assert query["state"] == started.state
    assert "offline.access" in query["scope"].split()
    account, event, _ = await kit.connector.finish(
        await consent(kit, started.url), actor="admin:alice"
    )
    assert event == "connect"
    assert (account.user_id, account.username, account.name) == ("1000", "twitstack_demo", "brand")
    assert "dm.read" in account.scopes
    stored = await kit.accounts.by_user_id("1000")
    assert stored == account
    blob = await kit.redis.get(keys.sealed_oauth2_tokens("brand"))
    assert blob is not None
    assert blob.startswith(b"ts1.k1.")
    found = await kit.accounts.tokens.read("brand")
    assert found is not None
    assert found[0].refresh_token
    me = await kit.http.get(
        "/2/users/me", headers={"authorization": f"Bearer {found[0].access_token}"}
    )
    assert me.status_code == 200
    health = await kit.accounts.health("brand")
    assert health.expires_at == pytest.approx(found[0].expires_at)
    assert not health.reconnect_needed
    audit = await kit.accounts.recent_audit()
    assert audit[0]["event"] == "connect"
    assert audit[0]["actor"] == "admin:alice"
    assert found[0].access_token not in json.dumps(audit)


async def test_reconnect_replaces_pair_and_clears_reconnect_flag(kit: Kit) -> None:
    """Reconnecting the same X user installs a new working pair in one step."""
    await connect(kit)
    old = await kit.accounts.tokens.read("brand")
    assert old is not None
    await kit.redis.hset(
        keys.oauth2_tokens("brand"), mapping={"reconnect_needed": "1", "reconnect_reason": "x"}
    )
    started = await kit.connector.start("brand", ["posting"], actor="admin:alice")
    _, event, _ = await kit.connector.finish(await consent(kit, started.url), actor="admin:alice")
    assert event == "reconnect"
    new = await kit.accounts.tokens.read("brand")
    assert new is not None
    assert new[0].refresh_token not in ("", old[0].refresh_token)
    assert not (await kit.accounts.health("brand")).reconnect_needed
    assert len(await kit.accounts.all()) == 1


async def refused(kit: Kit, query: dict[str, str], reason: str) -> None:
    before = await kit.redis.get(keys.sealed_oauth2_tokens("brand"))
    with pytest.raises(ConnectError) as caught:
        await kit.connector.finish(query, actor="admin:alice")
    assert caught.value.reason == reason
    assert await kit.redis.get(keys.sealed_oauth2_tokens("brand")) == before
    assert (await kit.accounts.recent_audit())[0]["event"] == "connect_refused"


async def test_reused_state_is_refused_and_credentials_untouched(kit: Kit) -> None:
    """A callback opens once: a second one with the same state is refused."""
    started = await kit.connector.start("brand", ["posting"], actor="admin:alice")
    query = await consent(kit, started.url)
    await kit.connector.finish(query, actor="admin:alice")
    await refused(kit, query, "bad_state")


async def test_unknown_state_is_refused(kit: Kit) -> None:
    """A state we never issued is refused."""
    await connect(kit)
    await refused(kit, {"state": "forged", "code": "x"}, "bad_state")


async def test_state_is_bound_to_who_started(kit: Kit) -> None:
    """Another user cannot complete someone else's sign-in."""
    started = await kit.connector.start("brand", ["posting"], actor="admin:alice")
    query = await consent(kit, started.url)
    with pytest.raises(ConnectError) as caught:
        await kit.connector.finish(query, actor="admin:mallory")
    assert caught.value.reason == "bad_state"


async def test_denied_consent_is_refused(kit: Kit) -> None:
    """error=access_denied gives a clear refusal; the stored pair stays."""
    await connect(kit)
    await kit.http.put("/_sandbox/oauth2/consent", json={"decision": "deny"})
    started = await kit.connector.start("brand", ["posting"], actor="admin:alice")
    await refused(kit, await consent(kit, started.url), "denied")


async def test_expired_code_is_refused_with_x_message(kit: Kit) -> None:
    """A code older than 30 seconds: X's message, and the stored pair stays."""
    await connect(kit)
    started = await kit.connector.start("brand", ["posting"], actor="admin:alice")
    query = await consent(kit, started.url)
    kit.state.clock.advance(31)
    with pytest.raises(ConnectError) as caught:
        await kit.connector.finish(query, actor="admin:alice")
    assert caught.value.reason == "exchange_refused"
    assert "authorization code was invalid" in caught.value.message


async def test_reconnect_as_another_x_user_is_refused(kit: Kit) -> None:
    """Signing in to X as a different account cannot overwrite the label's tokens."""
    await connect(kit)
    await kit.http.put("/_sandbox/oauth2/consent", json={"user_id": "1001"})
    started = await kit.connector.start("brand", ["posting"], actor="admin:alice")
    await refused(kit, await consent(kit, started.url), "wrong_user")
    assert (await kit.accounts.by_user_id("1001")) is None


async def test_missing_scope_is_refused(kit: Kit) -> None:
    """A grant narrower than asked for (a user unticking a scope) is refused."""
    started = await kit.connector.start("brand", ["posting"], actor="admin:alice")
    query = await consent(kit, started.url)
    # Swap the pending scopes for more than X granted, as if the user had narrowed the grant.
    key = keys.x_connect_pending(started.state)
    pending = json.loads(await kit.redis.get(key) or b"{}")
    pending["scopes"].append("dm.write")
    await kit.redis.set(key, json.dumps(pending))
    await refused(kit, query, "scope_missing")


async def test_toml_name_wins(kit: Kit) -> None:
    """A label configured in TOML cannot be connected over."""
    with pytest.raises(ConnectError) as caught:
        await kit.connector.start("toml", ["posting"], actor="admin:alice")
    assert caught.value.reason == "name_configured"


async def test_disconnect_revokes_at_x_and_removes(kit: Kit) -> None:
    """Disconnect revokes the grant at X, then removes record and tokens, audited."""
    await connect(kit)
    found = await kit.accounts.tokens.read("brand")
    assert found is not None
    account, outcome = await kit.connector.disconnect("1000", actor="admin:alice")
    assert outcome == "revoked at X"
    assert account.name == "brand"
    assert await kit.accounts.all() == []
    assert await kit.redis.exists(keys.sealed_oauth2_tokens("brand")) == 0
    me = await kit.http.get(
        "/2/users/me", headers={"authorization": f"Bearer {found[0].access_token}"}
    )
    assert me.status_code == 401
    assert (await kit.accounts.recent_audit())[0]["revoked"] == "revoked at X"


async def test_without_key_ring_nothing_starts(redis: Redis) -> None:
    """A process without TWITSTACK_SEALING_KEYS refuses before sending anyone to X."""
    from twitstack.core.sealing import KeyRingError

    async def no_ring() -> SealingKeyRing:
        raise KeyRingError("secret TWITSTACK_SEALING_KEYS is not set")

    async with httpx.AsyncClient() as http:
        accounts = ConnectedAccounts(redis, SealedTokenStore(redis, no_ring))
        oauth = XOAuthClient(http, api_base=BASE, client_id=DEFAULT_CLIENT_ID, client_secret=None)
        config = ConnectConfig(
            DEFAULT_CLIENT_ID, None, f"{BASE}/i/oauth2/authorize", BASE, REDIRECT
        )
        with pytest.raises(ConnectError) as caught:
            await XConnector(redis, accounts, oauth, config).start("brand", [], actor="a")
    assert caught.value.reason == "no_key_ring"
    assert "TWITSTACK_SEALING_KEYS" in caught.value.message
    assert await redis.dbsize() == 0


async def test_unreadable_account_records_are_skipped_not_fatal(kit: Kit) -> None:
    """Junk records beside a connected account: listing and lookups return the good one only."""
    await connect(kit, "brand")
    junk = {"1": b"\xff\xfe", "2": "{not json", "3": json.dumps({"name": 7}), "4": "[]"}
    await kit.redis.hset(keys.X_ACCOUNTS, mapping=junk)
    listed = await kit.accounts.all()
    assert [account.name for account in listed] == ["brand"]
    assert await kit.accounts.by_user_id("2") is None
    assert await kit.accounts.by_name("brand") is not None


async def refresh_status(kit: Kit, refresh_token: str) -> int:
    """What the fake X answers to a refresh with `refresh_token` (200: the grant is alive)."""
    response = await kit.http.post(
        "/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token,
              "client_id": DEFAULT_CLIENT_ID},
    )  # fmt: skip
    return response.status_code


async def me_status(kit: Kit, access_token: str) -> int:
    response = await kit.http.get(
        "/2/users/me", headers={"authorization": f"Bearer {access_token}"}
    )
    return response.status_code


async def reconnect(kit: Kit) -> Finished:
    started = await kit.connector.start("brand", ["posting"], actor="admin:alice")
    return await kit.connector.finish(await consent(kit, started.url), actor="admin:alice")


async def test_reconnect_revokes_the_replaced_grant_after_storing_the_new_one(kit: Kit) -> None:
    """The old refresh and access tokens are refused by X afterwards; the new pair works."""
    await connect(kit)
    old = await kit.accounts.tokens.read("brand")
    assert old is not None
    finished = await reconnect(kit)
    assert (finished.event, finished.warning) == ("reconnect", None)
    new = await kit.accounts.tokens.read("brand")
    assert new is not None
    assert await me_status(kit, old[0].access_token) == 401
    refused_body = await kit.http.post(
        "/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": old[0].refresh_token,
              "client_id": DEFAULT_CLIENT_ID},
    )  # fmt: skip
    assert refused_body.status_code == 400
    assert refused_body.json()["error_description"] == "Value passed for the token was invalid."
    assert await me_status(kit, new[0].access_token) == 200
    assert await refresh_status(kit, new[0].refresh_token) == 200
    events = [entry["event"] for entry in await kit.accounts.recent_audit()]
    assert events[:2] == ["old_grant_revoked", "reconnect"]


async def test_failed_revoke_keeps_the_reconnect_and_says_so(kit: Kit) -> None:
    """X answering 503 to the revoke: the new pair stays stored, the warning names the old
    grant (still alive at X), and the audit stream records it."""
    await connect(kit)
    old = await kit.accounts.tokens.read("brand")
    assert old is not None
    kit.state.faults.script(Endpoint.OAUTH2_REVOKE, [ScriptEntry(fault=FaultKind.ERROR_503)] * 2)
    finished = await reconnect(kit)
    assert finished.event == "reconnect"
    assert finished.warning is not None
    assert finished.warning.startswith("old grant not revoked: refresh token: X answered 503")
    assert finished.warning.endswith(", revoke it in the account's X settings")
    assert "access token: X answered 503" in finished.warning
    new = await kit.accounts.tokens.read("brand")
    assert new is not None
    assert new[0].refresh_token != old[0].refresh_token
    assert await me_status(kit, new[0].access_token) == 200
    # Honest about X's side: the old grant was not revoked, and still works there.
    assert await me_status(kit, old[0].access_token) == 200
    entry = (await kit.accounts.recent_audit())[0]
    assert entry["event"] == "old_grant_not_revoked"
    assert "X answered 503" in entry["reason"]
    assert old[0].refresh_token not in json.dumps(entry)


async def test_racing_reconnects_store_one_pair_and_revoke_every_other(kit: Kit) -> None:
    """Two callbacks finishing at once: one pair ends stored, the original and the loser's
    pair are both revoked at X (each install hands back exactly the pair it replaced)."""
    await connect(kit)
    first = await kit.connector.start("brand", ["posting"], actor="admin:alice")
    second = await kit.connector.start("brand", ["posting"], actor="admin:bob")
    queries = [await consent(kit, first.url), await consent(kit, second.url)]
    results: list[Finished] = []
    # Hold each callback at the store step until both got there: everything either read
    # before storing was read before the other stored (the widest window for a lost revoke).
    arrived, both_there = 0, anyio.Event()
    install = kit.accounts.install

    async def held_install(*args: Any, **kwargs: Any) -> str | None:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            both_there.set()
        with anyio.fail_after(10):
            await both_there.wait()
        return await install(*args, **kwargs)

    kit.accounts.install = held_install  # type: ignore[method-assign]

    async def finish(query: dict[str, str], actor: str) -> None:
        results.append(await kit.connector.finish(query, actor=actor))

    async with anyio.create_task_group() as tg:
        tg.start_soon(finish, queries[0], "admin:alice")
        tg.start_soon(finish, queries[1], "admin:bob")
    assert sorted(r.event for r in results) == ["reconnect", "reconnect"]
    assert [r.warning for r in results] == [None, None]
    stored = await kit.accounts.tokens.read("brand")
    assert stored is not None
    tokens = kit.state.tokens
    # The grants of the three code exchanges (the fake's preset user grant is not one).
    families = {r.family for r in tokens.refresh.values() if r.family.startswith("family-code-")}
    assert len(families) == 3
    live = families - tokens.revoked_families
    assert live == {tokens.refresh[stored[0].refresh_token].family}
    assert await refresh_status(kit, stored[0].refresh_token) == 200


async def test_reconnect_as_another_user_revokes_nothing_of_the_stored_grant(kit: Kit) -> None:
    """The wrong-user refusal revokes the grant just issued, never the stored one."""
    await connect(kit)
    old = await kit.accounts.tokens.read("brand")
    assert old is not None
    await kit.http.put("/_sandbox/oauth2/consent", json={"user_id": "1001"})
    started = await kit.connector.start("brand", ["posting"], actor="admin:alice")
    await refused(kit, await consent(kit, started.url), "wrong_user")
    assert await kit.accounts.tokens.read("brand") == old
    assert await me_status(kit, old[0].access_token) == 200
    issued = [r for r in kit.state.tokens.refresh.values() if r.spec.user_id == "1001"]
    assert [r.family in kit.state.tokens.revoked_families for r in issued] == [True]


async def test_user_connected_under_another_label_is_refused_and_new_grant_revoked(
    kit: Kit,
) -> None:
    """Connecting @twitstack_demo as a second label is refused; its new grant does not stay."""
    await connect(kit)
    old = await kit.accounts.tokens.read("brand")
    assert old is not None
    started = await kit.connector.start("other", ["posting"], actor="admin:alice")
    await refused(kit, await consent(kit, started.url), "already_connected")
    tokens = kit.state.tokens
    issued = {r.family for r in tokens.refresh.values() if r.family.startswith("family-code-")}
    assert issued - tokens.revoked_families == {tokens.refresh[old[0].refresh_token].family}
