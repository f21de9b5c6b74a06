"""The writer's X clients against the fake X API on loopback: contract, auth, refresh."""

from __future__ import annotations

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from twitstack.core.sealing import generate_key_ring
from twitstack.core.sections.writer import XAccountSettings
from twitstack.sandbox.xapi.config import (
    DEFAULT_BEARER_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_REFRESH_TOKEN,
)
from twitstack.writer.outcome import OutcomeKind
from twitstack.writer.tokens import BearerAuth, TokenManager, oauth1_auth
from twitstack.writer.x_calls import call_for
from twitstack.writer.xapi_client import WriterClient, XApiClient
from twitstack.writes.token_store import SEALING_KEYS_SECRET

AUTH = BearerAuth(DEFAULT_BEARER_TOKEN)


@pytest.mark.anyio
async def test_tweet_duplicate_delete_round_trip(sandbox: RunningSandbox) -> None:
    """Create, duplicate (403), read back, delete, and delete again (404 = already gone)."""
    async with httpx.AsyncClient() as http:
        client = XApiClient(http, base_url=sandbox.base_url)
        first = await client.execute(
            call_for("tweet", {"text": "hello sandbox"}), auth=AUTH, auth_kind="oauth2"
        )
        assert first.outcome.kind is OutcomeKind.SUCCESS
        assert first.headers["x-rate-limit-limit"] == "100"
        tweet_id = first.outcome.result_id
        assert tweet_id in sandbox.state.content.posts
        again = await client.execute(
            call_for("tweet", {"text": "hello sandbox"}), auth=AUTH, auth_kind="oauth2"
        )
        assert again.outcome.is_duplicate
        timeline = await client.recent_tweets("1000", auth=AUTH)
        assert [item.id for item in timeline.items] == [tweet_id]
        assert timeline.complete
        assert tweet_id is not None
        deleted = await client.execute(
            call_for("delete", {"tweet_id": tweet_id}), auth=AUTH, auth_kind="oauth2"
        )
        assert deleted.outcome.kind is OutcomeKind.SUCCESS
        gone = await client.execute(
            call_for("delete", {"tweet_id": tweet_id}), auth=AUTH, auth_kind="oauth2"
        )
        assert gone.outcome.kind is OutcomeKind.ALREADY_GONE


@pytest.mark.anyio
async def test_dm_sent_read_back_and_refused(sandbox: RunningSandbox) -> None:
    """A DM is created and readable; a recipient with closed DMs is a permanent failure."""
    async with httpx.AsyncClient() as http:
        client = XApiClient(http, base_url=sandbox.base_url)
        sent = await client.execute(
            call_for("dm", {"recipient_id": "1001", "text": "psst"}), auth=AUTH, auth_kind="oauth2"
        )
        assert sent.outcome.kind is OutcomeKind.SUCCESS
        events = await client.recent_dms("1001", auth=AUTH)
        assert [e.text for e in events.items] == ["psst"]
        refused = await client.execute(
            call_for("dm", {"recipient_id": "1002", "text": "psst"}), auth=AUTH, auth_kind="oauth2"
        )
        assert refused.outcome.kind is OutcomeKind.PERMANENT
        assert refused.outcome.detail


@pytest.mark.anyio
async def test_expired_token_refreshes_once_through_token_endpoint(
    sandbox: RunningSandbox, redis: Redis
) -> None:
    """A 401 leads to one rotation at the fake; the new token posts; the pair is in Redis."""
    secrets = {
        "ACCESS": DEFAULT_BEARER_TOKEN,
        "REFRESH": DEFAULT_REFRESH_TOKEN,
        SEALING_KEYS_SECRET: generate_key_ring(),
    }

    async def lookup(name: str) -> str | None:
        return secrets.get(name)

    account = XAccountSettings(
        name="demo", user_id="1000", client_id=DEFAULT_CLIENT_ID,
        access_token_secret="ACCESS", refresh_token_secret="REFRESH",
    )  # fmt: skip
    sandbox.state.tokens.expire_bearer(DEFAULT_BEARER_TOKEN)
    async with httpx.AsyncClient() as http:
        client = XApiClient(http, base_url=sandbox.base_url)
        tokens = TokenManager(
            redis, client, [account], clock=sandbox.state.clock.now, secret=lookup
        )
        stale = await tokens.auth_for("demo")
        call = call_for("tweet", {"text": "after refresh"})
        refused = await client.execute(call, auth=stale.auth, auth_kind="oauth2")
        assert refused.outcome.kind is OutcomeKind.AUTH_REFRESH
        results = []

        async def worker() -> None:
            results.append(await tokens.refresh("demo", stale.access_token))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(worker)
        fresh = results[0]
        posted = await client.execute(call, auth=fresh.auth, auth_kind="oauth2")
    assert posted.outcome.kind is OutcomeKind.SUCCESS
    assert sandbox.state.tokens.counters.calls == 1
    assert len({r.access_token for r in results}) == 1


@pytest.mark.anyio
async def test_oauth1_signed_post_is_accepted_with_its_body(sandbox: RunningSandbox) -> None:
    """Authlib-signed requests verify at the fake and the JSON body arrives intact."""
    auth = oauth1_auth(
        "sandbox-consumer-key", "sandbox-consumer-secret",
        "1000-sandbox-access-token", "sandbox-access-token-secret",
    )  # fmt: skip
    async with httpx.AsyncClient() as http:
        reply = await XApiClient(http, base_url=sandbox.base_url).execute(
            call_for("tweet", {"text": "signed by oauth1"}), auth=auth, auth_kind="oauth1"
        )
    assert reply.outcome.kind is OutcomeKind.SUCCESS
    texts = [post.text for post in sandbox.state.content.posts.values()]
    assert texts == ["signed by oauth1"]


@pytest.mark.anyio
async def test_sync_writer_client_against_the_fake(sandbox: RunningSandbox) -> None:
    """The seed's synchronous WriterClient pings, tweets and deletes."""

    def script() -> tuple[bool, str, dict[str, object]]:
        with WriterClient(sandbox.base_url, auth=AUTH) as client:
            alive = client.ping()
            tweet_id = client.tweet("from the sync client")["data"]["id"]
            return alive, tweet_id, client.delete(tweet_id)

    alive, tweet_id, deleted = await anyio.to_thread.run_sync(script)
    assert alive
    assert deleted == {"data": {"deleted": True}}
    assert tweet_id in sandbox.state.content.deleted
