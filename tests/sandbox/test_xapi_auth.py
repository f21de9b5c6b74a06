"""Bearer tokens, scopes, OAuth 1.0a signatures (real Authlib client) and token rotation."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from twitstack.sandbox.xapi import (
    DEFAULT_BEARER_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_REFRESH_TOKEN,
    BearerTokenSpec,
    OAuth1CredentialSpec,
    OAuth2ClientSpec,
    RefreshTokenSpec,
    XApiSandboxConfig,
    XApiState,
    create_xapi_app,
)

pytestmark = [
    pytest.mark.anyio,
    # Authlib 1.9 warns on import of its httpx integration (it prefers the httpx2 fork).
    pytest.mark.filterwarnings(
        "ignore:The httpx module is deprecated:authlib.deprecate.AuthlibDeprecationWarning"
    ),
]

AUTH = {"authorization": f"Bearer {DEFAULT_BEARER_TOKEN}"}
UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
READ_ONLY = OAuth1CredentialSpec(
    consumer_key="ro-key", consumer_secret="ro-secret", token="ro-token",
    token_secret="ro-token-secret", user_id="1000", read_only=True,
)  # fmt: skip


@pytest.fixture
def state() -> XApiState:
    return XApiState(XApiSandboxConfig(clock_start=1_800_000_000.0, clock_frozen=True))


@pytest.fixture
async def client(state: XApiState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url="https://sandbox.test") as http:
        yield http


def oauth1(spec: OAuth1CredentialSpec, **overrides: str) -> Any:
    from authlib.integrations.httpx_client import OAuth1Auth

    values = {
        "client_secret": spec.consumer_secret,
        "token": spec.token,
        "token_secret": spec.token_secret,
        **overrides,
    }
    return OAuth1Auth(spec.consumer_key, force_include_body=True, **values)


async def refresh(client: httpx.AsyncClient, token: str, **extra: Any) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": DEFAULT_CLIENT_ID}
    return await client.post("/2/oauth2/token", data=form, **extra)


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "OAuth garbage"])
async def test_unknown_credentials_get_exact_401(
    client: httpx.AsyncClient, header: str | None
) -> None:
    """Anything but a live token or a valid signature is X's 401 problem."""
    headers = {"authorization": header} if header else {}
    response = await client.post("/2/tweets", json={"text": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


async def test_token_expires_on_the_sandbox_clock(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """A token is accepted until expires_at, then 401."""
    expires = state.clock.now() + 60
    state.tokens.add_bearer(BearerTokenSpec(token="short", user_id="1000", expires_at=expires))
    headers = {"authorization": "Bearer short"}
    assert (await client.get("/2/users/me", headers=headers)).status_code == 200
    state.clock.advance(60)
    assert (await client.get("/2/users/me", headers=headers)).status_code == 401


async def test_missing_scope_is_403(client: httpx.AsyncClient, state: XApiState) -> None:
    """A token without tweet.write may read but not post."""
    scopes = frozenset({"tweet.read", "users.read"})
    state.tokens.add_bearer(BearerTokenSpec(token="ro", user_id="1000", scopes=scopes))
    headers = {"authorization": "Bearer ro"}
    assert (await client.get("/2/users/me", headers=headers)).status_code == 200
    response = await client.post("/2/tweets", json={"text": "x"}, headers=headers)
    assert response.status_code == 403
    assert state.content.posts == {}


async def test_app_only_token_is_unsupported_authentication(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """User-context endpoints refuse app-only bearer tokens."""
    state.tokens.add_bearer(BearerTokenSpec(token="app", user_id=None))
    response = await client.post(
        "/2/tweets", json={"text": "x"}, headers={"authorization": "Bearer app"}
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("/2/problems/unsupported-authentication")


async def test_oauth1_signed_by_authlib_is_accepted_with_body(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """Authlib's OAuth1Auth(force_include_body=True) passes verification and the JSON arrives."""
    spec = state.config.oauth1_credentials[0]
    response = await client.post(
        "/2/tweets", json={"text": "signed"}, auth=oauth1(spec), params={"q": "a b"}
    )
    assert response.status_code == 201
    stored = state.content.posts[response.json()["data"]["id"]]
    assert stored.body == {"text": "signed"}
    assert stored.author_id == spec.user_id


async def test_oauth1_signature_covers_the_url(client: httpx.AsyncClient, state: XApiState) -> None:
    """A request signed for one path and sent to another is rejected."""
    spec = state.config.oauth1_credentials[0]
    signed = oauth1(spec).auth_flow(httpx.Request("GET", "https://sandbox.test/2/users/me"))
    header = next(signed).headers["authorization"]
    response = await client.get("/2/users/me", params={"x": "1"}, headers={"authorization": header})
    assert response.status_code == 401


@pytest.mark.parametrize("field", ["client_secret", "token_secret"])
async def test_oauth1_wrong_secret_is_401(
    client: httpx.AsyncClient, state: XApiState, field: str
) -> None:
    """Signing with the wrong consumer or token secret fails verification."""
    spec = state.config.oauth1_credentials[0]
    response = await client.get("/2/users/me", auth=oauth1(spec, **{field: "wrong"}))
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


async def test_oauth1_tampered_signature_and_replayed_nonce_are_401(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """Changing one signature character, or replaying a header, is refused."""
    spec = state.config.oauth1_credentials[0]
    request = httpx.Request("GET", "https://sandbox.test/2/users/me")
    header = next(oauth1(spec).auth_flow(request)).headers["authorization"]
    tampered = header.replace('oauth_signature="', 'oauth_signature="A', 1)
    assert (await client.get("/2/users/me", headers={"authorization": tampered})).status_code == 401
    assert (await client.get("/2/users/me", headers={"authorization": header})).status_code == 200
    assert (await client.get("/2/users/me", headers={"authorization": header})).status_code == 401


async def test_read_only_oauth1_app_gets_oauth1_permissions(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """A read-only app may read but its writes get the oauth1-permissions problem."""
    state.tokens.add_oauth1(READ_ONLY)
    assert (await client.get("/2/users/me", auth=oauth1(READ_ONLY))).status_code == 200
    response = await client.post("/2/tweets", json={"text": "x"}, auth=oauth1(READ_ONLY))
    assert response.status_code == 403
    assert response.json()["type"] == "https://api.twitter.com/2/problems/oauth1-permissions"


async def test_refresh_rotates_and_rejects_reuse(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """A refresh token works once; the new pair works; reuse is X's exact 400."""
    first = await refresh(client, DEFAULT_REFRESH_TOKEN)
    assert first.status_code == 200
    pair = first.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 7200
    assert pair["refresh_token"] != DEFAULT_REFRESH_TOKEN
    me = await client.get(
        "/2/users/me", headers={"authorization": f"Bearer {pair['access_token']}"}
    )
    assert me.json()["data"]["id"] == "1000"
    reused = await refresh(client, DEFAULT_REFRESH_TOKEN)
    assert reused.status_code == 400
    assert reused.json() == {
        "error": "invalid_request",
        "error_description": "Value passed for the token was invalid.",
    }
    assert (await refresh(client, pair["refresh_token"])).status_code == 200
    counters = state.tokens.counters
    assert (counters.calls, counters.succeeded, counters.rejected) == (3, 2, 1)


async def test_refreshed_access_token_expires_after_ttl(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """New access tokens live access_token_ttl_s on the sandbox clock."""
    access = (await refresh(client, DEFAULT_REFRESH_TOKEN)).json()["access_token"]
    headers = {"authorization": f"Bearer {access}"}
    state.clock.advance(7199)
    assert (await client.get("/2/users/me", headers=headers)).status_code == 200
    state.clock.advance(1)
    assert (await client.get("/2/users/me", headers=headers)).status_code == 401


async def test_reuse_can_revoke_the_whole_family(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """In family-revoke mode, reusing a spent token kills its descendants too."""
    state.refresh_reuse_revokes_family = True
    pair = (await refresh(client, DEFAULT_REFRESH_TOKEN)).json()
    assert (await refresh(client, DEFAULT_REFRESH_TOKEN)).status_code == 400
    headers = {"authorization": f"Bearer {pair['access_token']}"}
    assert (await client.get("/2/users/me", headers=headers)).status_code == 401
    assert (await refresh(client, pair["refresh_token"])).status_code == 400
    # The configured default token is its own family and keeps working.
    assert (await client.get("/2/users/me", headers=AUTH)).status_code == 200


async def test_confidential_client_must_use_basic_auth(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """A client with a secret authenticates with Basic; without it, or wrong, is 401."""
    state.tokens.add_client(OAuth2ClientSpec(client_id="conf", client_secret="s3cret"))
    state.tokens.add_refresh(
        RefreshTokenSpec(token="conf-refresh", user_id="1000", client_id="conf")
    )
    form = {"grant_type": "refresh_token", "refresh_token": "conf-refresh", "client_id": "conf"}
    assert (await client.post("/2/oauth2/token", data=form)).status_code == 401
    wrong = base64.b64encode(b"conf:nope").decode()
    bad = await client.post(
        "/2/oauth2/token", data=form, headers={"authorization": f"Basic {wrong}"}
    )
    assert bad.status_code == 401
    good = await client.post("/2/oauth2/token", data=form, auth=("conf", "s3cret"))
    assert good.status_code == 200


async def test_refresh_token_of_another_client_and_bad_grant_are_rejected(
    client: httpx.AsyncClient,
) -> None:
    """The token is bound to its client; only the refresh_token grant is served."""
    form = {"grant_type": "refresh_token", "refresh_token": DEFAULT_REFRESH_TOKEN, "client_id": "x"}
    assert (await client.post("/2/oauth2/token", data=form)).status_code == 401
    form = {"grant_type": "password", "client_id": DEFAULT_CLIENT_ID}
    response = await client.post("/2/oauth2/token", data=form)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_openapi_needs_no_auth(client: httpx.AsyncClient) -> None:
    """The ping endpoint answers without credentials and lists the write paths."""
    response = await client.get("/2/openapi.json")
    assert response.status_code == 200
    assert "/2/tweets" in response.json()["paths"]
