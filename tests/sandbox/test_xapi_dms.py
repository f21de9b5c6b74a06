"""Direct messages: sending, refusals, validation and the read-back endpoint."""

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
SEND = "/2/dm_conversations/with/{}/messages"
READ = "/2/dm_conversations/with/{}/dm_events"


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


async def test_send_returns_conversation_and_event_ids(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """201 with dm_conversation_id '<smaller>-<larger>' and a new event id."""
    response = await client.post(SEND.format("1001"), json={"text": "hello there"})
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["dm_conversation_id"] == "1000-1001"
    [stored] = state.content.dms
    assert (stored.id, stored.text, stored.recipient_id) == (
        data["dm_event_id"],
        "hello there",
        "1001",
    )


async def test_recipient_refusing_dms_gets_403(client: httpx.AsyncClient, state: XApiState) -> None:
    """User 1002 accepts no messages: 403 and nothing stored."""
    response = await client.post(SEND.format("1002"), json={"text": "hi"})
    assert response.status_code == 403
    assert "1002" in response.json()["detail"]
    assert state.content.dms == []


@pytest.mark.parametrize(
    ("participant", "body"),
    [
        ("1001", {"text": "x" * 10_001}),
        ("1001", {}),
        ("1001", {"text": "hi", "attachments": [{"media_id": "1"}, {"media_id": "2"}]}),
        ("1001", {"text": "hi", "cc": "1002"}),
        ("4242", {"text": "hi"}),
        ("1000", {"text": "talking to myself"}),
    ],
)
async def test_invalid_messages_get_400(
    client: httpx.AsyncClient, state: XApiState, participant: str, body: dict[str, object]
) -> None:
    """Too long, empty, two attachments, unknown fields, unknown or self recipient."""
    response = await client.post(SEND.format(participant), json=body)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/2/problems/invalid-request")
    assert state.content.dms == []


async def test_ten_thousand_characters_is_the_limit(client: httpx.AsyncClient) -> None:
    """A DM is not weight-limited: exactly 10,000 characters is accepted."""
    response = await client.post(SEND.format("1001"), json={"text": "日" * 10_000})
    assert response.status_code == 201


async def test_missing_dm_write_scope_is_403(client: httpx.AsyncClient, state: XApiState) -> None:
    """A token without dm.write cannot send."""
    scopes = frozenset({"tweet.read", "tweet.write", "users.read"})
    state.tokens.add_bearer(BearerTokenSpec(token="nodm", user_id="1000", scopes=scopes))
    response = await client.post(
        SEND.format("1001"), json={"text": "hi"}, headers={"authorization": "Bearer nodm"}
    )
    assert response.status_code == 403


async def test_read_back_newest_first_with_pagination(client: httpx.AsyncClient) -> None:
    """dm_events lists the conversation newest first and pages with next_token."""
    for n in range(3):
        await client.post(SEND.format("1001"), json={"text": f"m{n}"})
    page = (await client.get(READ.format("1001"), params={"max_results": 2})).json()
    assert [e["text"] for e in page["data"]] == ["m2", "m1"]
    assert page["data"][0]["event_type"] == "MessageCreate"
    assert page["data"][0]["sender_id"] == "1000"
    params = {"max_results": 2, "pagination_token": page["meta"]["next_token"]}
    rest = (await client.get(READ.format("1001"), params=params)).json()
    assert [e["text"] for e in rest["data"]] == ["m0"]
    assert "next_token" not in rest["meta"]


async def test_read_back_can_be_disabled(client: httpx.AsyncClient, state: XApiState) -> None:
    """Without dm.read access the read-back is 403 while sending still works."""
    state.dm_read_enabled = False
    assert (await client.post(SEND.format("1001"), json={"text": "hi"})).status_code == 201
    assert (await client.get(READ.format("1001"))).status_code == 403
