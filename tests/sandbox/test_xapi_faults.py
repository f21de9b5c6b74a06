"""Injected faults over the ASGI transport: 5xx bodies, HTML 503, partial errors, scripts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from twitstack.sandbox.xapi import (
    DEFAULT_BEARER_TOKEN,
    Endpoint,
    FaultKind,
    FaultSettings,
    SandboxConnectionReset,
    ScriptedResponse,
    ScriptEntry,
    XApiSandboxConfig,
    XApiState,
    create_xapi_app,
)

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {DEFAULT_BEARER_TOKEN}"}


@pytest.fixture
def state() -> XApiState:
    return XApiState(XApiSandboxConfig(clock_start=1_800_000_000.0, clock_frozen=True))


@pytest.fixture
async def client(state: XApiState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox.test", headers=AUTH
    ) as http:
        yield http


def script(state: XApiState, endpoint: Endpoint, *kinds: FaultKind) -> None:
    state.faults.script(endpoint, [ScriptEntry(fault=kind) for kind in kinds])


@pytest.mark.parametrize(
    ("kind", "status", "title"),
    [
        (FaultKind.ERROR_500, 500, "Internal Server Error"),
        (FaultKind.ERROR_502, 502, "Bad Gateway"),
        (FaultKind.ERROR_503, 503, "Service Unavailable"),
        (FaultKind.ERROR_504, 504, "Gateway Timeout"),
    ],
)
async def test_server_errors_are_problems_and_store_nothing(
    client: httpx.AsyncClient, state: XApiState, kind: FaultKind, status: int, title: str
) -> None:
    """A plain 5xx fault answers X's problem body with rate headers and does not post."""
    script(state, Endpoint.CREATE_TWEET, kind)
    response = await client.post("/2/tweets", json={"text": "x"})
    assert response.status_code == status
    assert response.json() == {
        "title": title,
        "detail": title,
        "type": "about:blank",
        "status": status,
    }
    assert "x-rate-limit-remaining" in response.headers
    assert state.content.posts == {}


async def test_html_503_comes_from_the_cdn(client: httpx.AsyncClient, state: XApiState) -> None:
    """The CDN's page is HTML, without rate-limit headers."""
    script(state, Endpoint.CREATE_TWEET, FaultKind.HTML_503)
    response = await client.post("/2/tweets", json={"text": "x"})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "x-rate-limit-limit" not in response.headers


@pytest.mark.parametrize("endpoint", [Endpoint.CREATE_TWEET, Endpoint.CREATE_DM])
async def test_commit_then_503_stores_the_write(
    client: httpx.AsyncClient, state: XApiState, endpoint: Endpoint
) -> None:
    """The post or DM exists although the client saw a 503."""
    script(state, endpoint, FaultKind.COMMIT_THEN_503)
    path = (
        "/2/tweets"
        if endpoint is Endpoint.CREATE_TWEET
        else "/2/dm_conversations/with/1001/messages"
    )
    response = await client.post(path, json={"text": "did it land?"})
    assert response.status_code == 503
    stored = [p.text for p in state.content.posts.values()] + [m.text for m in state.content.dms]
    assert stored == ["did it land?"]


async def test_retry_after_commit_then_503_hits_duplicate_content(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """Blindly re-sending an ambiguous post is caught by the duplicate check."""
    script(state, Endpoint.CREATE_TWEET, FaultKind.COMMIT_THEN_503)
    assert (await client.post("/2/tweets", json={"text": "once"})).status_code == 503
    retry = await client.post("/2/tweets", json={"text": "once"})
    assert retry.status_code == 403
    assert state.content.post_text_counts()["once"] == 1


async def test_reset_without_a_socket_raises_to_the_in_process_client(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """In-process, a reset raises SandboxConnectionReset; the commit variant stores first."""
    script(state, Endpoint.CREATE_TWEET, FaultKind.RESET, FaultKind.COMMIT_THEN_RESET)
    with pytest.raises(SandboxConnectionReset):
        await client.post("/2/tweets", json={"text": "first"})
    assert state.content.posts == {}
    with pytest.raises(SandboxConnectionReset):
        await client.post("/2/tweets", json={"text": "second"})
    assert [p.text for p in state.content.posts.values()] == ["second"]


async def test_partial_errors_add_errors_to_a_success(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """A 201 may carry `errors` next to `data`."""
    script(state, Endpoint.CREATE_TWEET, FaultKind.PARTIAL_ERRORS)
    response = await client.post("/2/tweets", json={"text": "x"})
    assert response.status_code == 201
    body = response.json()
    assert body["data"]["id"] in state.content.posts
    assert body["errors"][0]["title"] == "Service Unavailable"


async def test_scripted_responses_are_served_in_order_then_normal(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """'Next N responses' for one endpoint; other endpoints and later requests are untouched."""
    canned = ScriptedResponse(status=400, body={"title": "Invalid Request"}, headers={"x-a": "1"})
    state.faults.script(
        Endpoint.CREATE_TWEET,
        [
            ScriptEntry(response=canned),
            ScriptEntry(
                response=ScriptedResponse(status=201, body={"data": {"id": "1"}}, commit=True)
            ),
        ],
    )
    assert (await client.get("/2/users/me")).status_code == 200
    first = await client.post("/2/tweets", json={"text": "a"})
    assert (first.status_code, first.headers["x-a"]) == (400, "1")
    assert "x-rate-limit-limit" in first.headers
    second = await client.post("/2/tweets", json={"text": "b"})
    assert second.json() == {"data": {"id": "1"}}
    assert [p.text for p in state.content.posts.values()] == ["b"]
    assert (await client.post("/2/tweets", json={"text": "c"})).status_code == 201
    assert state.faults.pending() == {}


async def test_probabilistic_faults_are_seeded_and_limited_to_endpoints() -> None:
    """The same seed faults the same requests; reads are not faulted by default."""

    async def run() -> list[int]:
        settings = FaultSettings(rates={FaultKind.ERROR_503: 0.3}, seed=7)
        state = XApiState(XApiSandboxConfig(faults=settings))
        transport = httpx.ASGITransport(create_xapi_app(state=state))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=AUTH
        ) as http:
            statuses = [
                (await http.post("/2/tweets", json={"text": f"t{n}"})).status_code
                for n in range(40)
            ]
            reads = [(await http.get("/2/users/me")).status_code for _ in range(10)]
        assert reads == [200] * 10
        return statuses

    first, second = await run(), await run()
    assert first == second
    assert 4 <= first.count(503) <= 20
    assert set(first) == {201, 503}


def test_fault_rates_must_be_probabilities() -> None:
    """Rates outside [0, 1] or adding up past 1 are configuration errors."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultSettings(rates={FaultKind.ERROR_500: 1.5})
    with pytest.raises(ValueError, match="more than 1"):
        FaultSettings(rates={FaultKind.ERROR_500: 0.6, FaultKind.RESET: 0.6})
