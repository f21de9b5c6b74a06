"""The /_sandbox/ control API: listing content, counts, clock, faults, scripts, users, tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from twitstack.sandbox.xapi import (
    DEFAULT_BEARER_TOKEN,
    XApiSandboxConfig,
    XApiState,
    create_xapi_app,
)

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {DEFAULT_BEARER_TOKEN}"}
START = 1_800_000_000.0


@pytest.fixture
def state() -> XApiState:
    return XApiState(XApiSandboxConfig(clock_start=START, clock_frozen=True))


@pytest.fixture
async def client(state: XApiState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as http:
        yield http


async def test_lists_posts_deletions_dms_and_counts(client: httpx.AsyncClient) -> None:
    """What was written is visible with counts, including duplicate-text counts."""
    first = (await client.post("/2/tweets", json={"text": "one"}, headers=AUTH)).json()["data"]
    await client.post("/_sandbox/clock/advance", json={"seconds": 90_000})
    await client.post("/2/tweets", json={"text": "one"}, headers=AUTH)
    await client.delete(f"/2/tweets/{first['id']}", headers=AUTH)
    await client.post("/2/dm_conversations/with/1001/messages", json={"text": "dm"}, headers=AUTH)
    posts = (await client.get("/_sandbox/posts")).json()
    assert (posts["count"], posts["deleted_count"]) == (1, 1)
    assert posts["posts"][0]["body"] == {"text": "one"}
    assert (await client.get("/_sandbox/posts/counts")).json()["duplicates"] == {"one": 2}
    assert (await client.get("/_sandbox/deletions")).json()["deletions"][0]["post_id"] == first[
        "id"
    ]
    dms = (await client.get("/_sandbox/dms")).json()
    assert (dms["count"], dms["dms"][0]["text"]) == (1, "dm")
    assert (await client.get("/_sandbox/dms/counts")).json()["counts"] == {"dm": 1}
    live = posts["posts"][0]["id"]
    one = (await client.get(f"/_sandbox/posts/{live}")).json()
    assert (one["post"]["text"], one["deleted"]) == ("one", False)
    assert (await client.get(f"/_sandbox/posts/{first['id']}")).json()["deleted"] is True
    assert (await client.get("/_sandbox/posts/404")).status_code == 404


async def test_clock_advances_and_reset_keeps_it(client: httpx.AsyncClient) -> None:
    """The clock moves only forward; reset forgets content but not time."""
    assert (await client.get("/_sandbox/clock")).json() == {"now": START}
    assert (await client.post("/_sandbox/clock/advance", json={"seconds": 60})).json() == {
        "now": START + 60
    }
    bad = await client.post("/_sandbox/clock/advance", json={"seconds": -1})
    assert bad.status_code == 400
    await client.post("/2/tweets", json={"text": "gone soon"}, headers=AUTH)
    summary = (await client.post("/_sandbox/reset")).json()
    assert (summary["posts"], summary["now"]) == (0, START + 60)


async def test_faults_and_scripts_are_set_over_http(client: httpx.AsyncClient) -> None:
    """PUT /faults sets probabilities; POST /script queues responses; GET /faults reports."""
    put = await client.put("/_sandbox/faults", json={"rates": {"error_502": 1.0}, "seed": 1})
    assert put.json()["settings"]["rates"] == {"error_502": 1.0}
    assert (await client.post("/2/tweets", json={"text": "x"}, headers=AUTH)).status_code == 502
    await client.put("/_sandbox/faults", json={})
    entries = [{"response": {"status": 429, "body": {"title": "Too Many Requests"}}}]
    await client.post("/_sandbox/script", json={"endpoint": "delete_tweet", "entries": entries})
    assert (await client.get("/_sandbox/faults")).json()["pending"] == {"delete_tweet": 1}
    assert (await client.delete("/2/tweets/1", headers=AUTH)).status_code == 429
    fired = (await client.get("/_sandbox/faults")).json()["fired"]
    assert {"endpoint": "delete_tweet", "fault": "429", "count": 1} in fired
    bad = await client.post("/_sandbox/script", json={"endpoint": "nope", "entries": entries})
    assert bad.status_code == 400


async def test_users_tokens_and_behaviour_can_be_added(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """A new user with a token can post; behaviour switches and refresh counts are exposed."""
    await client.post("/_sandbox/users", json={"id": "2000", "username": "bob", "name": "Bob"})
    await client.post("/_sandbox/tokens/bearer", json={"token": "bob", "user_id": "2000"})
    bob = {"authorization": "Bearer bob"}
    assert (await client.get("/2/users/me", headers=bob)).json()["data"]["username"] == "bob"
    await client.post("/_sandbox/tokens/bearer/bob/expire")
    assert (await client.get("/2/users/me", headers=bob)).status_code == 401
    await client.put("/_sandbox/behaviour", json={"billing": "credits_depleted"})
    assert (await client.get("/2/users/me", headers=AUTH)).status_code == 402
    form = {"grant_type": "refresh_token", "refresh_token": "x", "client_id": "sandbox-client"}
    await client.post("/2/oauth2/token", data=form)
    assert (await client.get("/_sandbox/oauth2")).json() == {
        "calls": 1,
        "succeeded": 0,
        "rejected": 1,
    }


async def test_rate_limits_can_be_replaced(client: httpx.AsyncClient) -> None:
    """PUT /ratelimits/{endpoint} installs new windows (e.g. a short window for tests)."""
    windows = {"windows": [{"scope": "user", "limit": 1, "window_s": 10}]}
    assert (await client.put("/_sandbox/ratelimits/create_tweet", json=windows)).status_code == 200
    assert (await client.post("/2/tweets", json={"text": "a"}, headers=AUTH)).status_code == 201
    limited = await client.post("/2/tweets", json={"text": "b"}, headers=AUTH)
    assert (limited.status_code, limited.headers["x-rate-limit-reset"]) == (
        429,
        str(int(START) + 10),
    )
