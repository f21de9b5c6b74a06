"""Thread-aware read-back: `conversation_id`, `in_reply_to_user_id` and `referenced_tweets`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from twitstack.sandbox.xapi import (
    DEFAULT_BEARER_TOKEN,
    BearerTokenSpec,
    XApiSandboxConfig,
    XApiState,
    create_xapi_app,
)

pytestmark = pytest.mark.anyio
AUTH = {"authorization": f"Bearer {DEFAULT_BEARER_TOKEN}"}
OTHER = {"authorization": "Bearer user-1001-token"}
FIELDS = "conversation_id,in_reply_to_user_id,referenced_tweets,author_id"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    state = XApiState(XApiSandboxConfig(clock_start=1_800_000_000.0, clock_frozen=True))
    state.tokens.add_bearer(BearerTokenSpec(token="user-1001-token", user_id="1001"))
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox.test", headers=AUTH
    ) as http:
        yield http


async def _post(client: httpx.AsyncClient, text: str, reply_to: str | None = None,
                headers: dict[str, str] = AUTH) -> str:  # fmt: skip
    body: dict[str, object] = {"text": text}
    if reply_to is not None:
        body["reply"] = {"in_reply_to_tweet_id": reply_to}
    response = await client.post("/2/tweets", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def test_a_self_thread_reads_back_as_one_conversation(client: httpx.AsyncClient) -> None:
    """Each part names the first as its conversation and the one before as what it answers."""
    first = await _post(client, "part 1")
    second = await _post(client, "part 2", first)
    third = await _post(client, "part 3", second)
    page = await client.get("/2/users/1000/tweets", params={"tweet.fields": FIELDS})
    by_id = {t["id"]: t for t in page.json()["data"]}
    assert {t["conversation_id"] for t in by_id.values()} == {first}
    assert "referenced_tweets" not in by_id[first]
    assert "in_reply_to_user_id" not in by_id[first]
    assert by_id[second]["referenced_tweets"] == [{"type": "replied_to", "id": first}]
    assert by_id[third]["referenced_tweets"] == [{"type": "replied_to", "id": second}]
    assert by_id[third]["in_reply_to_user_id"] == "1000"


async def test_a_reply_to_someone_else_joins_their_conversation(
    client: httpx.AsyncClient,
) -> None:
    """A reply's conversation is the root of what it answers; it names that author."""
    root = await _post(client, "what do you think, @twitstack_demo?", headers=OTHER)
    reply = await _post(client, "my answer", root)
    page = await client.get("/2/users/1000/tweets", params={"tweet.fields": FIELDS})
    [mine] = page.json()["data"]
    assert mine["id"] == reply
    assert mine["conversation_id"] == root
    assert mine["in_reply_to_user_id"] == "1001"


async def test_fields_are_only_there_when_asked_for(client: httpx.AsyncClient) -> None:
    """As on X: without `tweet.fields` a tweet has id, text and edit history only."""
    await _post(client, "plain")
    [tweet] = (await client.get("/2/users/1000/tweets")).json()["data"]
    assert set(tweet) == {"id", "text", "edit_history_tweet_ids"}
