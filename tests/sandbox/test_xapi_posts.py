"""POST /2/tweets, DELETE /2/tweets/{id}, the timeline read-back and /2/users/me."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.media_files import png
from twitstack.sandbox.xapi import (
    DEFAULT_BEARER_TOKEN,
    BearerTokenSpec,
    XApiSandboxConfig,
    XApiState,
    create_xapi_app,
    tco_link,
)

pytestmark = pytest.mark.anyio

START = 1_800_000_000.0
AUTH = {"authorization": f"Bearer {DEFAULT_BEARER_TOKEN}"}
OTHER_TOKEN = "user-1001-token"


@pytest.fixture
def state() -> XApiState:
    config = XApiSandboxConfig(clock_start=START, clock_frozen=True)
    sandbox = XApiState(config)
    sandbox.tokens.add_bearer(BearerTokenSpec(token=OTHER_TOKEN, user_id="1001"))
    return sandbox


@pytest.fixture
async def client(state: XApiState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox.test", headers=AUTH
    ) as http:
        yield http


async def post(client: httpx.AsyncClient, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return await client.post("/2/tweets", json=body, **kw)


async def test_create_returns_201_with_id_text_and_edit_history(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """A valid post is stored and answered with X's 201 shape."""
    response = await post(client, {"text": "hello world"})
    assert response.status_code == 201
    data = response.json()["data"]
    assert data == {"id": data["id"], "text": "hello world", "edit_history_tweet_ids": [data["id"]]}
    assert data["id"].isdigit()
    assert state.content.posts[data["id"]].author_id == "1000"


async def test_ids_are_increasing_digit_strings(client: httpx.AsyncClient) -> None:
    """Snowflake-like ids grow even when the frozen clock does not move."""
    ids = [int((await post(client, {"text": f"post {n}"})).json()["data"]["id"]) for n in range(5)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"text": "x", "media": {"media_ids": ["1"]}, "poll": {"options": ["a", "b"],
          "duration_minutes": 60}}, "poll"),
        ({"text": "x", "quote_tweet_id": "5", "card_uri": "card://1"}, "card_uri"),
        ({"text": "x", "media": {"media_ids": []}}, "media.media_ids"),
        ({"text": "x", "media": {"media_ids": ["1", "2", "3", "4", "5"]}}, "media.media_ids"),
        ({"text": "x", "media": {"media_ids": ["abc"]}}, "media.media_ids"),
        ({"text": "x", "poll": {"options": ["only"], "duration_minutes": 60}}, "poll.options"),
        ({"text": "x", "poll": {"options": list("abcde"), "duration_minutes": 60}},
         "poll.options"),
        ({"text": "x", "poll": {"options": ["a" * 26, "b"], "duration_minutes": 60}},
         "poll.options"),
        ({"text": "x", "poll": {"options": ["", "b"], "duration_minutes": 60}}, "poll.options"),
        ({"text": "x", "poll": {"options": ["a", "b"], "duration_minutes": 4}},
         "poll.duration_minutes"),
        ({"text": "x", "reply": {"in_reply_to_tweet_id": 12}}, "reply.in_reply_to_tweet_id"),
        ({"text": "x", "reply": {"in_reply_to_tweet_id": "1", "extra": 1}}, "reply.extra"),
        ({"text": "x", "colour": "red"}, "body.colour"),
        ({"text": 5}, "text"),
        ({"text": "x", "nullcast": "yes"}, "nullcast"),
    ],
)  # fmt: skip
async def test_invalid_bodies_get_400_invalid_request(
    client: httpx.AsyncClient, state: XApiState, body: dict[str, Any], parameter: str
) -> None:
    """Each structural rule is enforced with X's invalid-request problem naming the field."""
    response = await post(client, body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert any(parameter in error["parameters"] for error in problem["errors"])
    assert state.content.posts == {}


async def test_body_that_is_not_json_gets_400(client: httpx.AsyncClient) -> None:
    """Garbage bytes are an invalid request, not a crash."""
    response = await client.post("/2/tweets", content=b"{nope", headers={"content-type": "x"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Body is not valid JSON"


@pytest.mark.parametrize(
    ("text", "valid"),
    [("a" * 280, True), ("a" * 281, False), ("日" * 140, True), ("日" * 141, False),
     ("see https://example.com/" + "x" * 300, True), ("", False)],
)  # fmt: skip
async def test_text_validity_follows_twitter_text(
    client: httpx.AsyncClient, text: str, valid: bool
) -> None:
    """Weighted length (CJK 2, URLs 23) decides; bad text is a 400 by default."""
    response = await post(client, {"text": text})
    assert response.status_code == (201 if valid else 400)


async def test_invalid_text_status_can_be_403() -> None:
    """The undocumented status for bad text is configurable."""
    state = XApiState(XApiSandboxConfig(invalid_text_status=403))
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as http:
        response = await post(http, {"text": "a" * 281})
    assert response.status_code == 403
    assert response.json()["title"] == "Forbidden"


async def test_media_post_may_have_no_text(client: httpx.AsyncClient) -> None:
    """Media carries the post; X appends a t.co media link to the text."""
    upload = await client.post("/2/media/upload", files={"media": ("a.png", png())})
    media_id = upload.json()["data"]["id"]
    response = await post(client, {"media": {"media_ids": [media_id]}})
    assert response.status_code == 201
    assert response.json()["data"]["text"].startswith("https://t.co/")


async def test_reply_to_unknown_post_is_refused(client: httpx.AsyncClient) -> None:
    """A dangling reply target gets X's 403 'deleted or not visible' problem."""
    response = await post(client, {"text": "hi", "reply": {"in_reply_to_tweet_id": "42"}})
    assert response.status_code == 403
    assert "deleted or not visible" in response.json()["detail"]


async def test_reply_to_existing_post_is_accepted(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """A reply to a live post is stored with its target."""
    parent = (await post(client, {"text": "parent"})).json()["data"]["id"]
    response = await post(client, {"text": "child", "reply": {"in_reply_to_tweet_id": parent}})
    assert response.status_code == 201
    assert state.content.posts[response.json()["data"]["id"]].reply_to == parent


async def test_duplicate_text_gets_exact_403_body(client: httpx.AsyncClient) -> None:
    """Same NFC text by the same author is refused with the body seen in the wild."""
    assert (await post(client, {"text": "café"})).status_code == 201
    response = await post(client, {"text": unicodedata.normalize("NFD", "café")})
    assert response.status_code == 403
    assert response.json() == {
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
    }


async def test_duplicate_allowed_for_other_author_and_after_window(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """Duplicates are per author and only within the configured window."""
    assert (await post(client, {"text": "same"})).status_code == 201
    other = {"authorization": f"Bearer {OTHER_TOKEN}"}
    assert (await post(client, {"text": "same"}, headers=other)).status_code == 201
    state.clock.advance(state.config.duplicate_window_s + 1)
    assert (await post(client, {"text": "same"})).status_code == 201
    assert state.content.post_text_counts()["same"] == 3


async def test_delete_by_owner_returns_deleted_true(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """The owner's DELETE removes the post and records the deletion."""
    post_id = (await post(client, {"text": "bye"})).json()["data"]["id"]
    response = await client.delete(f"/2/tweets/{post_id}")
    assert response.status_code == 200
    assert response.json() == {"data": {"deleted": True}}
    assert post_id not in state.content.posts
    assert [d.post_id for d in state.content.deletions] == [post_id]


async def test_delete_unknown_or_twice_is_404_resource_not_found(
    client: httpx.AsyncClient,
) -> None:
    """Deleting an id that is gone answers 404 resource-not-found by default."""
    post_id = (await post(client, {"text": "once"})).json()["data"]["id"]
    assert (await client.delete(f"/2/tweets/{post_id}")).status_code == 200
    response = await client.delete(f"/2/tweets/{post_id}")
    assert response.status_code == 404
    assert response.json()["type"].endswith("/2/problems/resource-not-found")
    assert response.json()["resource_id"] == post_id


async def test_delete_unknown_can_answer_deleted_false(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """The alternative behaviour reported by third parties: 200 deleted:false."""
    state.delete_unknown = "deleted_false"
    response = await client.delete("/2/tweets/777")
    assert response.status_code == 200
    assert response.json() == {"data": {"deleted": False}}


async def test_delete_of_someone_elses_post_is_403(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """Only the author may delete; the post survives."""
    post_id = (await post(client, {"text": "mine"})).json()["data"]["id"]
    other = {"authorization": f"Bearer {OTHER_TOKEN}"}
    response = await client.delete(f"/2/tweets/{post_id}", headers=other)
    assert response.status_code == 403
    assert post_id in state.content.posts


async def test_users_me_returns_the_token_owner(client: httpx.AsyncClient) -> None:
    """The default token belongs to @twitstack_demo."""
    response = await client.get("/2/users/me")
    assert response.json() == {
        "data": {"id": "1000", "name": "twitstack demo", "username": "twitstack_demo"}
    }


async def test_timeline_renders_text_as_x_does(client: httpx.AsyncClient) -> None:
    """URLs come back as t.co links and & < > are HTML-escaped."""
    await post(client, {"text": "a <b> & c https://example.com/long/path"})
    timeline = (await client.get("/2/users/1000/tweets")).json()
    expected = f"a &lt;b&gt; &amp; c {tco_link('https://example.com/long/path')}"
    assert timeline["data"][0]["text"] == expected


async def test_timeline_is_newest_first_and_paginates(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """max_results pages through live posts newest first; deleted posts are left out."""
    ids = []
    for n in range(7):
        ids.append((await post(client, {"text": f"post {n}"})).json()["data"]["id"])
        state.clock.advance(1)
    await client.delete(f"/2/tweets/{ids[3]}")
    first = (await client.get("/2/users/1000/tweets", params={"max_results": 5})).json()
    assert [t["id"] for t in first["data"]] == [ids[6], ids[5], ids[4], ids[2], ids[1]]
    assert first["meta"]["result_count"] == 5
    token = first["meta"]["next_token"]
    params: dict[str, Any] = {"max_results": 5, "pagination_token": token}
    second = (await client.get("/2/users/1000/tweets", params=params)).json()
    assert [t["id"] for t in second["data"]] == [ids[0]]
    assert "next_token" not in second["meta"]


async def test_timeline_start_time_and_fields(client: httpx.AsyncClient, state: XApiState) -> None:
    """start_time filters by creation time; tweet.fields adds created_at and author_id."""
    await post(client, {"text": "old"})
    state.clock.advance(3600)
    await post(client, {"text": "new"})
    params = {"start_time": "2027-01-15T08:30:00Z", "tweet.fields": "created_at,author_id"}
    data = (await client.get("/2/users/1000/tweets", params=params)).json()["data"]
    assert [t["text"] for t in data] == ["new"]
    assert data[0]["author_id"] == "1000"
    assert data[0]["created_at"] == "2027-01-15T09:00:00.000Z"


async def test_timeline_bad_parameters_and_unknown_user(client: httpx.AsyncClient) -> None:
    """max_results out of range is a 400; an unknown user is a 200 with errors."""
    assert (await client.get("/2/users/1000/tweets", params={"max_results": 4})).status_code == 400
    response = await client.get("/2/users/999/tweets")
    assert response.status_code == 200
    assert response.json()["errors"][0]["resource_type"] == "user"
    empty = await client.get("/2/users/1001/tweets")
    assert empty.json() == {"meta": {"result_count": 0}}


async def test_reply_to_someone_who_never_engaged_is_refused(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """X refuses an API reply unless the author mentioned or quoted the replying account."""
    me = state.content.users["1000"].username  # the default bearer token's user
    stranger = state.content.import_post("71", "5005", "nothing about anyone", 1.0)
    mention = state.content.import_post("72", "5005", f"hey @{me.upper()} look", 2.0)
    lookalike = state.content.import_post("73", "5005", f"hey @{me}_fan look", 3.0)
    mine = (await post(client, {"text": "mine"})).json()["data"]["id"]
    quoting = state.content.import_post("74", "5005", "so true", 4.0, quote_of=mine)
    refused = [stranger.id, lookalike.id]
    allowed = [mention.id, quoting.id, mine]
    for target in refused:
        response = await post(
            client, {"text": f"re {target}", "reply": {"in_reply_to_tweet_id": target}}
        )
        assert response.status_code == 403, target
        assert "not been mentioned or otherwise engaged" in response.json()["detail"]
    for target in allowed:
        response = await post(
            client, {"text": f"re {target}", "reply": {"in_reply_to_tweet_id": target}}
        )
        assert response.status_code == 201, (target, response.text)
