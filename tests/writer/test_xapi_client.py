"""The X clients against scripted responses (httpx.MockTransport): paths, bodies, outcomes."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import stamina

from twitstack.writer.outcome import OutcomeKind
from twitstack.writer.tokens import BearerAuth, oauth1_auth
from twitstack.writer.x_calls import call_for
from twitstack.writer.xapi_client import TokenRefreshRejected, WriterClient, XApiClient, XApiError

Handler = Callable[[httpx.Request], httpx.Response]
BASE = "https://x.test"


def recording(handler: Handler) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return handler(request)

    return httpx.MockTransport(record), seen


def created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"data": {"id": "111", "text": "x"}})


def test_tweet_posts_text_and_params() -> None:
    """tweet() POSTs /2/tweets with X's body fields and returns X's JSON."""
    transport, seen = recording(created)
    with WriterClient(BASE, auth=BearerAuth("tok"), transport=transport) as client:
        result = client.tweet("hello world", reply={"in_reply_to_tweet_id": "5"})
    assert result == {"data": {"id": "111", "text": "x"}}
    assert seen[0].method == "POST"
    assert seen[0].url.path == "/2/tweets"
    assert json.loads(seen[0].content) == {
        "text": "hello world",
        "reply": {"in_reply_to_tweet_id": "5"},
    }
    assert seen[0].headers["authorization"] == "Bearer tok"


def test_dm_posts_to_the_conversation_with_the_recipient() -> None:
    """dm() POSTs the text to /2/dm_conversations/with/:id/messages."""
    transport, seen = recording(
        lambda r: httpx.Response(
            201, json={"data": {"dm_conversation_id": "1-2", "dm_event_id": "9"}}
        )
    )
    with WriterClient(BASE, transport=transport) as client:
        assert client.dm("42", "hi")["data"]["dm_event_id"] == "9"
    assert seen[0].url.path == "/2/dm_conversations/with/42/messages"
    assert json.loads(seen[0].content) == {"text": "hi"}


def test_delete_retries_transient_then_succeeds() -> None:
    """A 503 on DELETE is retried (idempotent) until X answers deleted:true."""
    answers = iter([httpx.Response(503, json={"title": "Service Unavailable"})] * 2)

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(200, json={"data": {"deleted": True}}))

    transport, seen = recording(handler)
    stamina.set_testing(True, attempts=3)  # the autouse fixture allows 1 attempt; reset after
    with WriterClient(BASE, transport=transport) as client:
        assert client.delete("77") == {"data": {"deleted": True}}
    assert [r.method for r in seen] == ["DELETE"] * 3
    assert seen[0].url.path == "/2/tweets/77"


def test_delete_of_missing_tweet_is_idempotent() -> None:
    """A 404 on DELETE returns X's body instead of raising: the tweet is gone either way."""
    transport, _ = recording(lambda r: httpx.Response(404, json={"title": "Not Found Error"}))
    with WriterClient(BASE, transport=transport) as client:
        assert client.delete("77") == {"title": "Not Found Error"}


def test_tweet_is_never_retried_on_503() -> None:
    """A 503 on POST raises an ambiguous XApiError after exactly one request."""
    transport, seen = recording(
        lambda r: httpx.Response(503, json={"title": "Service Unavailable"})
    )
    with WriterClient(BASE, transport=transport) as client, pytest.raises(XApiError) as info:
        client.tweet("once")
    assert info.value.outcome.kind is OutcomeKind.AMBIGUOUS
    assert len(seen) == 1


def test_ping_reads_openapi_document() -> None:
    """ping() is True only when GET /2/openapi.json answers 200."""
    transport, seen = recording(lambda r: httpx.Response(200, json={"openapi": "3.0.0"}))
    with WriterClient(BASE, transport=transport) as client:
        assert client.ping()
    assert seen[0].url.path == "/2/openapi.json"
    down, _ = recording(lambda r: httpx.Response(500))
    with WriterClient(BASE, transport=down) as client:
        assert not client.ping()


def test_oauth1_signing_keeps_the_json_body() -> None:
    """OAuth1 signs with an OAuth header and still sends the JSON body (force_include_body)."""
    transport, seen = recording(created)
    auth = oauth1_auth("ck", "cs", "at", "ats")
    with WriterClient(BASE, auth=auth, auth_kind="oauth1", transport=transport) as client:
        client.tweet("signed")
    assert seen[0].headers["authorization"].startswith("OAuth ")
    assert 'oauth_signature_method="HMAC-SHA1"' in seen[0].headers["authorization"]
    assert json.loads(seen[0].content) == {"text": "signed"}


@pytest.mark.anyio
async def test_execute_classifies_and_keeps_headers() -> None:
    """execute() returns the outcome plus X's rate-limit headers."""
    headers = {
        "x-rate-limit-limit": "100",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": "99",
    }
    transport, _ = recording(
        lambda r: httpx.Response(429, json={"title": "Too Many Requests"}, headers=headers)
    )
    async with httpx.AsyncClient(transport=transport) as http:
        reply = await XApiClient(http, base_url=BASE).execute(
            call_for("tweet", {"text": "t"}), auth=BearerAuth("a"), auth_kind="oauth2"
        )
    assert reply.outcome.kind is OutcomeKind.WAIT_UNTIL
    assert reply.outcome.retry_at == 99
    assert reply.headers["x-rate-limit-remaining"] == "0"


@pytest.mark.anyio
async def test_execute_turns_read_timeout_into_ambiguous() -> None:
    """A POST whose answer never came is ambiguous, not an exception."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        reply = await XApiClient(http, base_url=BASE).execute(
            call_for("dm", {"recipient_id": "5", "text": "x"}),
            auth=BearerAuth("a"),
            auth_kind="oauth2",
        )
    assert reply.outcome.kind is OutcomeKind.AMBIGUOUS


@pytest.mark.anyio
async def test_recent_tweets_parses_timeline() -> None:
    """recent_tweets() reads GET /2/users/:id/tweets with a start_time."""
    body = {"data": [{"id": "1", "text": "a", "created_at": "2026-01-01T00:00:00.000Z"}]}
    transport, seen = recording(lambda r: httpx.Response(200, json=body))
    async with httpx.AsyncClient(transport=transport) as http:
        read = await XApiClient(http, base_url=BASE).recent_tweets(
            "9", auth=BearerAuth("a"), since=0
        )
    assert [(i.id, i.text) for i in read.items] == [("1", "a")]
    assert read.items[0].created_at is not None
    assert read.complete
    assert seen[0].url.path == "/2/users/9/tweets"
    assert seen[0].url.params["start_time"] == "1970-01-01T00:00:00Z"


@pytest.mark.anyio
async def test_refresh_posts_form_and_rejects_spent_token() -> None:
    """refresh_oauth2() sends the refresh grant; a 400 raises TokenRefreshRejected."""

    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(x.split("=") for x in request.content.decode().split("&"))
        if form["refresh_token"] == "good":
            return httpx.Response(
                200, json={"access_token": "A2", "refresh_token": "R2", "expires_in": 7200}
            )
        return httpx.Response(400, json={"error": "invalid_request"})

    transport, seen = recording(handler)
    async with httpx.AsyncClient(transport=transport) as http:
        client = XApiClient(http, base_url=BASE)
        tokens = await client.refresh_oauth2(
            client_id="cid", client_secret=None, refresh_token="good"
        )
        assert (tokens.access_token, tokens.refresh_token, tokens.expires_in_s) == (
            "A2",
            "R2",
            7200,
        )
        with pytest.raises(TokenRefreshRejected):
            await client.refresh_oauth2(client_id="cid", client_secret="s", refresh_token="spent")
    assert "client_id=cid" in seen[0].content.decode()
    assert seen[1].headers["authorization"].startswith("Basic ")


def test_call_for_rejects_unknown_action() -> None:
    """Only tweet, dm and delete map to X calls."""
    with pytest.raises(ValueError, match="expected action"):
        call_for("like", {})


@pytest.mark.anyio
async def test_read_back_stopped_by_its_page_limit_is_marked_incomplete() -> None:
    """A timeline that still has a next_token after max_pages is not a complete read."""
    body = {"data": [{"id": "1", "text": "a"}], "meta": {"next_token": "more"}}
    transport, seen = recording(lambda r: httpx.Response(200, json=body))
    async with httpx.AsyncClient(transport=transport) as http:
        read = await XApiClient(http, base_url=BASE).recent_tweets(
            "9", auth=BearerAuth("a"), max_pages=3
        )
    assert len(seen) == 3
    assert seen[-1].url.params["pagination_token"] == "more"
    assert len(read.items) == 3
    assert not read.complete
