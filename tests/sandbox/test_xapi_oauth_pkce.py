"""The fake's authorization-code grant with PKCE, revoke, and /2/users/me with the issued token."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from twitstack.sandbox.xapi import DEFAULT_CLIENT_ID, XApiSandboxConfig, XApiState, create_xapi_app
from twitstack.sandbox.xapi.config import Endpoint, FaultKind
from twitstack.sandbox.xapi.faults import ScriptEntry

pytestmark = pytest.mark.anyio

REDIRECT = "https://moderation.test/accounts/x/callback"
VERIFIER = "v" * 64
CHALLENGE = (
    base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
)
SCOPES = "tweet.read tweet.write users.read offline.access"
INVALID_CODE = {
    "error": "invalid_request",
    "error_description": "Value passed for the authorization code was invalid.",
}


@pytest.fixture
def state() -> XApiState:
    return XApiState(XApiSandboxConfig(clock_start=1_800_000_000.0, clock_frozen=True))


@pytest.fixture
async def client(state: XApiState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url="https://sandbox.test") as http:
        yield http


async def authorize(client: httpx.AsyncClient, **overrides: str) -> dict[str, list[str]]:
    params = {
        "response_type": "code", "client_id": DEFAULT_CLIENT_ID, "redirect_uri": REDIRECT,
        "scope": SCOPES, "state": "st-1", "code_challenge": CHALLENGE,
        "code_challenge_method": "S256", **overrides,
    }  # fmt: skip
    response = await client.get("/i/oauth2/authorize", params=params)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


async def exchange(client: httpx.AsyncClient, code: str, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code", "code": code, "client_id": DEFAULT_CLIENT_ID,
        "redirect_uri": REDIRECT, "code_verifier": VERIFIER, **overrides,
    }  # fmt: skip
    return await client.post("/2/oauth2/token", data=form)


async def test_code_exchange_gives_a_working_pair(client: httpx.AsyncClient) -> None:
    """Consent redirects with code and state; the code and verifier buy a pair for the user."""
    query = await authorize(client)
    assert query["state"] == ["st-1"]
    response = await exchange(client, query["code"][0])
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 7200
    assert body["scope"] == "offline.access tweet.read tweet.write users.read"
    me = await client.get(
        "/2/users/me", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["data"]["username"] == "twitstack_demo"
    refreshed = await client.post(
        "/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
              "client_id": DEFAULT_CLIENT_ID},
    )  # fmt: skip
    assert refreshed.status_code == 200


async def test_without_offline_access_no_refresh_token(client: httpx.AsyncClient) -> None:
    """X issues a refresh token only for offline.access."""
    query = await authorize(client, scope="tweet.read users.read")
    body = (await exchange(client, query["code"][0])).json()
    assert "refresh_token" not in body
    assert body["access_token"]


async def test_wrong_verifier_is_refused_and_code_stays_unspent(client: httpx.AsyncClient) -> None:
    """A verifier that does not hash to the challenge gets X's invalid_request."""
    code = (await authorize(client))["code"][0]
    wrong = await exchange(client, code, code_verifier="w" * 64)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_request"
    assert "code verifier" in wrong.json()["error_description"]
    assert (await exchange(client, code)).status_code == 200


async def test_replayed_code_is_refused_and_revokes_the_grant(client: httpx.AsyncClient) -> None:
    """A code opens once; a second use fails and kills the tokens the first one issued."""
    code = (await authorize(client))["code"][0]
    first = (await exchange(client, code)).json()
    again = await exchange(client, code)
    assert again.status_code == 400
    assert again.json() == INVALID_CODE
    me = await client.get(
        "/2/users/me", headers={"authorization": f"Bearer {first['access_token']}"}
    )
    assert me.status_code == 401


async def test_code_expires_after_30_seconds(client: httpx.AsyncClient, state: XApiState) -> None:
    """X's codes live 30 seconds; the sandbox clock decides."""
    code = (await authorize(client))["code"][0]
    state.clock.advance(31)
    response = await exchange(client, code)
    assert response.status_code == 400
    assert response.json() == INVALID_CODE


async def test_redirect_uri_must_match(client: httpx.AsyncClient) -> None:
    """The exchange repeats the redirect_uri the code was issued for."""
    code = (await authorize(client))["code"][0]
    response = await exchange(client, code, redirect_uri="https://elsewhere.test/cb")
    assert response.status_code == 400
    assert "redirect uri" in response.json()["error_description"]


async def test_denied_consent_redirects_with_access_denied(client: httpx.AsyncClient) -> None:
    """With the consent switch on deny, the user is sent back with error=access_denied."""
    switched = await client.put("/_sandbox/oauth2/consent", json={"decision": "deny"})
    assert switched.status_code == 200
    query = await authorize(client)
    assert query == {"error": ["access_denied"], "state": ["st-1"]}


async def test_consent_as_another_user(client: httpx.AsyncClient) -> None:
    """The switch picks which sandbox user consents."""
    await client.put("/_sandbox/oauth2/consent", json={"user_id": "1001"})
    body = (await exchange(client, (await authorize(client))["code"][0])).json()
    me = await client.get(
        "/2/users/me", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["data"]["id"] == "1001"


async def test_unknown_client_gets_an_error_page_not_a_redirect(client: httpx.AsyncClient) -> None:
    """An unknown client_id is never redirected anywhere."""
    response = await client.get(
        "/i/oauth2/authorize", params={"client_id": "nobody", "redirect_uri": REDIRECT}
    )
    assert response.status_code == 400
    assert "client_id" in response.text


async def test_missing_challenge_redirects_with_invalid_request(client: httpx.AsyncClient) -> None:
    """PKCE is mandatory."""
    query = await authorize(client, code_challenge="")
    assert query["error"] == ["invalid_request"]


async def test_revoke_kills_access_and_refresh(client: httpx.AsyncClient) -> None:
    """Revoking the refresh token revokes the whole grant."""
    body = (await exchange(client, (await authorize(client))["code"][0])).json()
    revoked = await client.post(
        "/2/oauth2/revoke",
        data={"token": body["refresh_token"], "token_type_hint": "refresh_token",
              "client_id": DEFAULT_CLIENT_ID},
    )  # fmt: skip
    assert revoked.status_code == 200
    assert revoked.json() == {"revoked": True}
    me = await client.get(
        "/2/users/me", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 401
    refresh = await client.post(
        "/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
              "client_id": DEFAULT_CLIENT_ID},
    )  # fmt: skip
    assert refresh.status_code == 400


async def test_revoke_needs_a_known_client(client: httpx.AsyncClient) -> None:
    """Revoke authenticates the client like the token endpoint."""
    response = await client.post("/2/oauth2/revoke", data={"token": "x", "client_id": "nobody"})
    assert response.status_code == 401


async def revoke(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        "/2/oauth2/revoke",
        data={"token": token, "token_type_hint": "refresh_token", "client_id": DEFAULT_CLIENT_ID},
    )


async def refresh_status(client: httpx.AsyncClient, token: str) -> int:
    response = await client.post(
        "/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token,
              "client_id": DEFAULT_CLIENT_ID},
    )  # fmt: skip
    return response.status_code


async def test_scripted_revoke_faults(client: httpx.AsyncClient, state: XApiState) -> None:
    """`oauth2_revoke` scripts: a 503 revokes nothing; commit_then_503 revokes, then fails."""
    first = (await exchange(client, (await authorize(client))["code"][0])).json()
    second = (await exchange(client, (await authorize(client))["code"][0])).json()
    state.faults.script(
        Endpoint.OAUTH2_REVOKE,
        [ScriptEntry(fault=FaultKind.ERROR_503), ScriptEntry(fault=FaultKind.COMMIT_THEN_503)],
    )
    failed = await revoke(client, first["refresh_token"])
    assert failed.status_code == 503
    assert await refresh_status(client, first["refresh_token"]) == 200
    lost = await revoke(client, second["refresh_token"])
    assert lost.status_code == 503
    assert await refresh_status(client, second["refresh_token"]) == 400
    assert state.faults.pending() == {}
