"""The fake on real loopback: connection resets, latency past timeouts, commit-then-fail."""

from __future__ import annotations

import anyio
import httpx
import pytest

from twitstack.sandbox.xapi import (
    DEFAULT_BEARER_TOKEN,
    Endpoint,
    FaultKind,
    FaultSettings,
    ScriptEntry,
    XApiSandboxConfig,
    open_xapi_sandbox,
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings(
        "ignore:The httpx module is deprecated:authlib.deprecate.AuthlibDeprecationWarning"
    ),
]

AUTH = {"authorization": f"Bearer {DEFAULT_BEARER_TOKEN}"}
LATENCY = FaultSettings(latency_s=1.0)


async def test_serves_on_a_free_loopback_port() -> None:
    """The handle's base_url answers and its state is the one the app uses."""
    with anyio.fail_after(10):
        async with (
            open_xapi_sandbox() as sandbox,
            httpx.AsyncClient(base_url=sandbox.base_url, headers=AUTH) as http,
        ):
            assert sandbox.base_url.startswith("http://127.0.0.1:")
            assert sandbox.port > 0
            response = await http.post("/2/tweets", json={"text": "over tcp"})
            assert response.status_code == 201
            assert [p.text for p in sandbox.state.content.posts.values()] == ["over tcp"]


@pytest.mark.parametrize(
    ("kind", "stored"), [(FaultKind.RESET, 0), (FaultKind.COMMIT_THEN_RESET, 1)]
)
async def test_reset_is_a_transport_error_for_httpx(kind: FaultKind, stored: int) -> None:
    """The client sees the connection drop; commit-then-reset leaves the post stored."""
    with anyio.fail_after(10):
        async with (
            open_xapi_sandbox() as sandbox,
            httpx.AsyncClient(base_url=sandbox.base_url, headers=AUTH) as http,
        ):
            sandbox.state.faults.script(Endpoint.CREATE_TWEET, [ScriptEntry(fault=kind)])
            with pytest.raises(httpx.TransportError):
                await http.post("/2/tweets", json={"text": "reset me"})
            assert len(sandbox.state.content.posts) == stored
            # The server survives: the next request on a new connection works.
            assert (await http.get("/2/users/me")).status_code == 200


@pytest.mark.parametrize(
    ("kind", "stored"), [(FaultKind.LATENCY, 0), (FaultKind.COMMIT_THEN_TIMEOUT, 1)]
)
async def test_latency_outlasts_the_client_timeout(kind: FaultKind, stored: int) -> None:
    """A 0.2 s client times out; commit-then-timeout has stored the post before sleeping."""
    config = XApiSandboxConfig(faults=LATENCY)
    with anyio.fail_after(10):
        async with (
            open_xapi_sandbox(config) as sandbox,
            httpx.AsyncClient(base_url=sandbox.base_url, headers=AUTH, timeout=0.2) as http,
        ):
            sandbox.state.faults.script(Endpoint.CREATE_TWEET, [ScriptEntry(fault=kind)])
            with pytest.raises(httpx.ReadTimeout):
                await http.post("/2/tweets", json={"text": "slow"})
            assert len(sandbox.state.content.posts) == stored


async def test_commit_then_fail_on_one_in_ten_never_loses_a_post() -> None:
    """Under 10 % commit-then-503/reset every post is stored exactly once when not retried."""
    rates = {FaultKind.COMMIT_THEN_503: 0.05, FaultKind.COMMIT_THEN_RESET: 0.05}
    config = XApiSandboxConfig(faults=FaultSettings(rates=rates, seed=3))
    outcomes: list[str] = []
    with anyio.fail_after(20):
        async with (
            open_xapi_sandbox(config) as sandbox,
            httpx.AsyncClient(base_url=sandbox.base_url, headers=AUTH) as http,
        ):
            for n in range(60):
                try:
                    response = await http.post("/2/tweets", json={"text": f"post {n}"})
                    outcomes.append(str(response.status_code))
                except httpx.TransportError:
                    outcomes.append("reset")
            counts = sandbox.state.content.post_text_counts()
    assert set(outcomes) >= {"201", "503", "reset"}
    assert sorted(counts.values()) == [1] * 60


async def test_oauth1_over_loopback_http() -> None:
    """Authlib signs plain-http loopback URLs, and the server verifies the real Host."""
    from authlib.integrations.httpx_client import OAuth1Auth

    with anyio.fail_after(10):
        async with open_xapi_sandbox() as sandbox:
            spec = sandbox.state.config.oauth1_credentials[0]
            auth = OAuth1Auth(
                spec.consumer_key,
                spec.consumer_secret,
                spec.token,
                spec.token_secret,
                force_include_body=True,
            )
            async with httpx.AsyncClient(base_url=sandbox.base_url, auth=auth) as http:
                response = await http.post("/2/tweets", json={"text": "signed over tcp"})
            assert response.status_code == 201
