"""Fixed-window rate limits, X's headers on every response, usage caps and credits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from twitstack.sandbox.xapi import (
    DEFAULT_BEARER_TOKEN,
    BearerTokenSpec,
    BillingMode,
    Endpoint,
    LimitScope,
    WindowLimit,
    XApiSandboxConfig,
    XApiState,
    create_xapi_app,
)

pytestmark = pytest.mark.anyio

START = 1_800_000_000.0
AUTH = {"authorization": f"Bearer {DEFAULT_BEARER_TOKEN}"}
OTHER = {"authorization": "Bearer other"}
RATE_HEADERS = ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset")


@pytest.fixture
def state() -> XApiState:
    limits = {
        Endpoint.CREATE_TWEET: (
            WindowLimit(scope=LimitScope.USER, limit=3, window_s=900),
            WindowLimit(scope=LimitScope.APP, limit=5, window_s=86_400),
        ),
        Endpoint.CREATE_DM: (
            WindowLimit(scope=LimitScope.USER, limit=15, window_s=900),
            WindowLimit(scope=LimitScope.USER, limit=2, window_s=86_400),
        ),
    }
    config = XApiSandboxConfig(clock_start=START, clock_frozen=True, rate_limits=limits)
    sandbox = XApiState(config)
    sandbox.tokens.add_bearer(BearerTokenSpec(token="other", user_id="1001"))
    return sandbox


@pytest.fixture
async def client(state: XApiState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox.test", headers=AUTH
    ) as http:
        yield http


def limit_headers(response: httpx.Response) -> tuple[int, int, int]:
    limit, remaining, reset = (int(response.headers[name]) for name in RATE_HEADERS)
    return limit, remaining, reset


async def test_window_counts_down_then_429_until_reset(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """Three posts fit, the fourth is a 429 with remaining 0; after reset the window reopens."""
    seen = []
    for n in range(3):
        response = await client.post("/2/tweets", json={"text": f"n{n}"})
        assert response.status_code == 201
        seen.append(limit_headers(response))
    assert seen == [(3, 2, 1_800_000_900), (3, 1, 1_800_000_900), (3, 0, 1_800_000_900)]
    limited = await client.post("/2/tweets", json={"text": "n3"})
    assert limited.status_code == 429
    assert limited.json() == {
        "title": "Too Many Requests",
        "detail": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
    }
    assert limit_headers(limited) == (3, 0, 1_800_000_900)
    state.clock.advance(899)
    assert (await client.post("/2/tweets", json={"text": "n4"})).status_code == 429
    state.clock.advance(1)
    reopened = await client.post("/2/tweets", json={"text": "n5"})
    assert reopened.status_code == 201
    assert limit_headers(reopened) == (3, 2, 1_800_001_800)
    assert len(state.content.posts) == 4


async def test_headers_on_every_response(client: httpx.AsyncClient) -> None:
    """401, 400, 403 and 404 answers carry the rate-limit headers too."""
    responses = [
        await client.post("/2/tweets", json={"text": "x"}, headers={"authorization": "Bearer no"}),
        await client.post("/2/tweets", json={"text": ""}),
        await client.post("/2/tweets", json={"text": "x", "reply": {"in_reply_to_tweet_id": "9"}}),
        await client.delete("/2/tweets/12345"),
        await client.get("/2/users/me"),
    ]
    assert [r.status_code for r in responses] == [401, 400, 403, 404, 200]
    for response in responses:
        assert all(name in response.headers for name in RATE_HEADERS), response.status_code


async def test_users_have_separate_windows_but_share_the_app_window(
    client: httpx.AsyncClient,
) -> None:
    """Another user keeps posting after one is limited, until the app's 24 h budget is gone."""
    for n in range(3):
        assert (await client.post("/2/tweets", json={"text": f"a{n}"})).status_code == 201
    assert (await client.post("/2/tweets", json={"text": "a3"})).status_code == 429
    first = await client.post("/2/tweets", json={"text": "b0"}, headers=OTHER)
    assert first.status_code == 201
    assert first.headers["x-app-limit-24hour-remaining"] == "1"
    assert (await client.post("/2/tweets", json={"text": "b1"}, headers=OTHER)).status_code == 201
    blocked = await client.post("/2/tweets", json={"text": "b2"}, headers=OTHER)
    assert blocked.status_code == 429
    assert blocked.headers["x-app-limit-24hour-remaining"] == "0"
    assert blocked.headers["x-rate-limit-remaining"] == "1"  # the user window still has room


async def test_dm_daily_cap_reports_24_hour_user_headers(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """The per-user 24 h DM bucket shows in x-user-limit-24hour-* and caps sending."""
    for _ in range(2):
        sent = await client.post("/2/dm_conversations/with/1001/messages", json={"text": "hi"})
        assert sent.status_code == 201
    assert sent.headers["x-user-limit-24hour-limit"] == "2"
    assert sent.headers["x-user-limit-24hour-remaining"] == "0"
    assert sent.headers["x-user-limit-24hour-reset"] == str(int(START) + 86_400)
    capped = await client.post("/2/dm_conversations/with/1001/messages", json={"text": "hi"})
    assert capped.status_code == 429
    assert capped.headers["x-rate-limit-remaining"] == "13"
    state.clock.advance(86_400)
    again = await client.post("/2/dm_conversations/with/1001/messages", json={"text": "hi"})
    assert again.status_code == 201
    assert len(state.content.dms) == 3


async def test_exhausting_a_window_from_the_control_api(
    client: httpx.AsyncClient,
) -> None:
    """Tests can use up a daily bucket at once to model 'daily exhausted'."""
    response = await client.post(
        "/_sandbox/ratelimits/create_dm/exhaust", json={"user_id": "1000", "window_s": 86_400}
    )
    assert response.json()["headers"]["x-user-limit-24hour-remaining"] == "0"
    capped = await client.post("/2/dm_conversations/with/1001/messages", json={"text": "hi"})
    assert capped.status_code == 429


async def test_24_hour_headers_can_be_turned_off() -> None:
    """Pay-per-use responses have been seen without x-*-limit-24hour-* headers."""
    state = XApiState(XApiSandboxConfig(send_24hour_headers=False))
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as http:
        response = await http.post("/2/tweets", json={"text": "x"})
    assert response.headers["x-rate-limit-limit"] == "100"
    assert not [name for name in response.headers if "24hour" in name]


async def test_default_limits_follow_pay_per_usage_table() -> None:
    """Defaults: 100 posts/15 min per user and 10,000/24 h per app."""
    state = XApiState(XApiSandboxConfig())
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as http:
        response = await http.post("/2/tweets", json={"text": "x"})
        dm = await http.post("/2/dm_conversations/with/1001/messages", json={"text": "x"})
    assert response.headers["x-rate-limit-limit"] == "100"
    assert response.headers["x-app-limit-24hour-limit"] == "10000"
    assert dm.headers["x-rate-limit-limit"] == "15"
    assert dm.headers["x-user-limit-24hour-limit"] == "1440"


async def test_usage_capped_mode_answers_429_usage_capped(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """The usage-cap 429 has its own problem type and nothing is posted."""
    state.billing = BillingMode.USAGE_CAPPED
    response = await client.post("/2/tweets", json={"text": "x"})
    assert response.status_code == 429
    assert response.json()["type"] == "https://api.twitter.com/2/problems/usage-capped"
    assert "x-rate-limit-reset" in response.headers
    assert state.content.posts == {}


async def test_credits_mode_answers_402(client: httpx.AsyncClient, state: XApiState) -> None:
    """Out of pay-per-usage credits is a 402 credits problem."""
    state.billing = BillingMode.CREDITS_DEPLETED
    response = await client.post("/2/dm_conversations/with/1001/messages", json={"text": "x"})
    assert response.status_code == 402
    assert response.json()["type"].endswith("/2/problems/credits")
    assert state.content.dms == []
