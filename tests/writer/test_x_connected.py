"""The writer posts through an account connected with PKCE, and marks it for reconnecting only
when X refuses its refresh token (never on a transient failure)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.core.sealing import SealingKeyRing, generate_key_ring
from twitstack.sandbox.xapi.config import DEFAULT_CLIENT_ID
from twitstack.writer.tokens import CredentialsError, TokenManager
from twitstack.writer.xapi_client import XApiClient, XApiError
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.token_store import SEALING_KEYS_SECRET, SealedTokenStore, StoredTokens
from twitstack.writes.x_accounts import ConnectedAccounts
from twitstack.writes.x_connect import ConnectConfig, XConnector
from twitstack.writes.x_oauth import XOAuthClient

pytestmark = pytest.mark.anyio

RING = generate_key_ring("k1")
REDIRECT = "http://127.0.0.1:9/accounts/x/callback"


@pytest.fixture
async def connector(redis: Redis, sandbox: RunningSandbox) -> AsyncIterator[XConnector]:
    async def ring() -> SealingKeyRing:
        return SealingKeyRing.parse(RING, source="test")

    async with httpx.AsyncClient() as http:
        oauth = XOAuthClient(
            http, api_base=sandbox.base_url, client_id=DEFAULT_CLIENT_ID, client_secret=None
        )
        config = ConnectConfig(
            DEFAULT_CLIENT_ID, None, f"{sandbox.base_url}/i/oauth2/authorize",
            sandbox.base_url, REDIRECT,
        )  # fmt: skip
        yield XConnector(
            redis, ConnectedAccounts(redis, SealedTokenStore(redis, ring)), oauth, config
        )


async def connect(connector: XConnector, sandbox: RunningSandbox) -> None:
    started = await connector.start("brand", ["posting"], actor="cli:test")
    async with httpx.AsyncClient() as browser:
        response = await browser.get(started.url)
    query = dict(parse_qsl(urlsplit(response.headers["location"]).query))
    await connector.finish(query, actor="cli:test")


def settings_without_toml(
    make_settings: Callable[..., Settings], sandbox: RunningSandbox
) -> Settings:
    return writer_settings(
        make_settings, sandbox.base_url, accounts=[], default_account="brand",
        oauth2_client_id=DEFAULT_CLIENT_ID,
    )  # fmt: skip


async def test_writer_posts_through_a_connected_account(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox,
    connector: XConnector,
) -> None:  # fmt: skip
    """No TOML account at all: the connected one is found by its label and posts as its user."""
    await connect(connector, sandbox)
    settings = settings_without_toml(make_settings, sandbox)
    async with running_writer(
        settings, redis, sandbox, secrets={SEALING_KEYS_SECRET: RING}
    ) as writer:
        request = approved(tweet("hello from a connected account", account="brand"))
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
    posts = list(sandbox.state.content.posts.values())
    assert [(p.author_id, p.text) for p in posts] == [("1000", "hello from a connected account")]


async def test_refused_refresh_marks_reconnect_needed_and_reconnect_resumes(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox,
    connector: XConnector,
) -> None:  # fmt: skip
    """X's refusal of the refresh token: flag, X's message, gauge; a reconnect clears it all."""
    await connect(connector, sandbox)
    tokens = sandbox.state.tokens
    # The user revoked the app at X: every token of the grant is dead.
    tokens.revoked_families.update(set(tokens.bearer_family.values()))
    settings = settings_without_toml(make_settings, sandbox)
    async with running_writer(
        settings, redis, sandbox, secrets={SEALING_KEYS_SECRET: RING}
    ) as writer:
        request = approved(tweet("after revocation", account="brand"))
        await writer.push(request)

        async def flagged() -> bool:
            public = await redis.hgetall(keys.oauth2_tokens("brand"))
            return public.get(b"reconnect_needed") == b"1"

        await wait_until(flagged)
        public = await redis.hgetall(keys.oauth2_tokens("brand"))
        assert b"Value passed for the token was invalid" in public[b"reconnect_reason"]
        await wait_until(
            lambda: _gauge(writer.metric("writer_account_reconnect_needed", account="brand"), 1)
        )
        await wait_until(lambda: _paused(redis))
        await connect(connector, sandbox)
        await wait_until(lambda: _not_paused(redis))
        # Waiting requests look again after paused_recheck_s (the fake's clock is frozen).
        sandbox.state.clock.advance(settings.writer.paused_recheck_s + 1)
        await writer.wait_states([request.id], {S.EXECUTED})
        assert (await redis.hget(keys.oauth2_tokens("brand"), "reconnect_needed")) is None
        await wait_until(
            lambda: _gauge(writer.metric("writer_account_reconnect_needed", account="brand"), 0)
        )


async def _paused(redis: Redis) -> bool:
    return bool(await redis.exists(keys.account_paused("brand")))


async def _not_paused(redis: Redis) -> bool:
    return not await redis.exists(keys.account_paused("brand"))


async def _gauge(value: float, wanted: float) -> bool:
    return value == wanted


async def test_transient_token_endpoint_failure_never_marks_reconnect(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox,
    connector: XConnector,
) -> None:  # fmt: skip
    """A 503 from the token endpoint leaves the account without a reconnect flag."""
    await connect(connector, sandbox)
    settings = settings_without_toml(make_settings, sandbox)

    def unavailable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"title": "Service Unavailable", "status": 503})

    async def lookup(name: str) -> str | None:
        return RING if name == SEALING_KEYS_SECRET else None

    async with httpx.AsyncClient(transport=httpx.MockTransport(unavailable)) as http:
        settings.writer.use_connected(
            [
                a.writer_settings(None)
                for a in await ConnectedAccounts(redis, SealedTokenStore(redis, _ring)).all()
            ]
        )
        manager = TokenManager(
            redis, XApiClient(http, base_url="https://x.test"), [], clock=lambda: 0.0,
            secret=lookup, lookup=settings.writer.account,
        )  # fmt: skip
        auth = await manager.auth_for("brand")
        with pytest.raises((XApiError, CredentialsError)):
            await manager.refresh("brand", auth.access_token)
    assert (await redis.hget(keys.oauth2_tokens("brand"), "reconnect_needed")) is None


async def _ring() -> SealingKeyRing:
    return SealingKeyRing.parse(RING, source="test")


async def test_account_connected_while_running_is_found_at_once(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox,
    connector: XConnector,
) -> None:  # fmt: skip
    """A request for an account connected a moment ago is not failed as unknown."""
    settings = settings_without_toml(make_settings, sandbox)
    async with running_writer(
        settings, redis, sandbox, secrets={SEALING_KEYS_SECRET: RING}
    ) as writer:
        await connect(connector, sandbox)
        request = approved(tweet("right after connecting", account="brand"))
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})


async def test_writer_keeps_posting_after_a_reconnect_revoked_the_old_grant(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox,
    connector: XConnector,
) -> None:  # fmt: skip
    """The writer posted with the old pair (and holds its access token); after the reconnect
    revoked that grant at X, the next post goes out with the new pair, no reconnect flag."""
    await connect(connector, sandbox)
    old = await connector_tokens(redis)
    settings = settings_without_toml(make_settings, sandbox)
    async with running_writer(
        settings, redis, sandbox, secrets={SEALING_KEYS_SECRET: RING}
    ) as writer:
        before = approved(tweet("before the reconnect", account="brand"))
        await writer.push(before)
        await writer.wait_states([before.id], {S.EXECUTED})
        await connect(connector, sandbox)
        after = approved(tweet("after the reconnect", account="brand"))
        await writer.push(after)
        await writer.wait_states([after.id], {S.EXECUTED})
    async with httpx.AsyncClient() as http:
        refused = await http.post(
            f"{sandbox.base_url}/2/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": old.refresh_token,
                  "client_id": DEFAULT_CLIENT_ID},
        )  # fmt: skip
    assert refused.status_code == 400
    assert (await connector_tokens(redis)).refresh_token != old.refresh_token
    assert (await redis.hget(keys.oauth2_tokens("brand"), "reconnect_needed")) is None
    posts = sorted(p.text for p in sandbox.state.content.posts.values() if p.author_id == "1000")
    assert posts == ["after the reconnect", "before the reconnect"]


async def connector_tokens(redis: Redis) -> StoredTokens:
    found = await SealedTokenStore(redis, _ring).read("brand")
    assert found is not None
    return found[0]
