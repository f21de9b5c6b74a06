"""OAuth 2.0 refresh: single-flight across workers and replicas, rotation persisted first."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from twitstack.core.sealing import SealingKeyRing, generate_key_ring
from twitstack.core.sections.writer import XAccountSettings
from twitstack.writer.tokens import AccountAuth, CredentialsError, TokenManager
from twitstack.writer.xapi_client import XApiClient
from twitstack.writes.token_store import SEALING_KEYS_SECRET, SealedTokenStore, StoredTokens

RING = generate_key_ring("k1")
SECRETS = {"A_ACCESS": "access-0", "A_REFRESH": "refresh-0", SEALING_KEYS_SECRET: RING}
ACCOUNT = XAccountSettings(
    name="a",
    user_id="1",
    client_id="cid",
    access_token_secret="A_ACCESS",
    refresh_token_secret="A_REFRESH",
)


async def lookup(name: str) -> str | None:
    return SECRETS.get(name)


def store(redis: Redis) -> SealedTokenStore:
    """The sealed store as the writer sees it, to read or replace a pair as another replica."""

    async def ring() -> SealingKeyRing:
        return SealingKeyRing.parse(RING, source="test")

    return SealedTokenStore(redis, ring)


class RotatingTokenEndpoint:
    """X's token endpoint: each refresh token works once, then answers 400."""

    def __init__(self) -> None:
        self.valid = {"refresh-0"}
        self.counter = itertools.count(1)
        self.calls = 0
        self.on_request: Callable[[], Awaitable[None]] | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.on_request is not None:
            await self.on_request()
        form = {k: v[0] for k, v in parse_qs((await request.aread()).decode()).items()}
        token = form.get("refresh_token", "")
        if token not in self.valid:
            body = {
                "error": "invalid_request",
                "error_description": "Value passed for the token was invalid.",
            }
            return httpx.Response(400, json=body)
        self.valid.discard(token)
        await anyio.sleep(0.05)  # long enough for every other worker to pile up behind the lock
        n = next(self.counter)
        self.valid.add(f"refresh-{n}")
        return httpx.Response(
            200,
            json={
                "token_type": "bearer",
                "expires_in": 7200,
                "access_token": f"access-{n}",
                "refresh_token": f"refresh-{n}",
            },
        )


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis_pair(redis_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    one, two = Redis.from_url(redis_url), Redis.from_url(redis_url)
    yield one, two
    await one.aclose()
    await two.aclose()


@pytest.mark.anyio
async def test_one_refresh_for_many_workers_on_two_replicas(
    redis_pair: tuple[Redis, Redis],
) -> None:
    """Ten workers on two replicas hit a 401 together: exactly one refresh reaches X."""
    endpoint = RotatingTokenEndpoint()
    clock = Clock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
        client = XApiClient(http, base_url="https://x.test")
        managers = [
            TokenManager(redis, client, [ACCOUNT], clock=clock, secret=lookup)
            for redis in redis_pair
        ]
        first = await managers[0].auth_for("a")
        assert first.access_token == "access-0"
        results: list[AccountAuth] = []

        async def worker(i: int) -> None:
            results.append(await managers[i % 2].refresh("a", first.access_token))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for i in range(10):
                    tg.start_soon(worker, i)
    assert endpoint.calls == 1
    assert {r.access_token for r in results} == {"access-1"}
    found = await store(redis_pair[0]).read("a")
    assert found is not None
    assert found[0].refresh_token == "refresh-1"
    assert found[0].expires_at == clock.now + 7200
    public = await redis_pair[0].hgetall("twitstack:writer:token:a")
    assert float(public[b"expires_at"]) == clock.now + 7200


@pytest.mark.anyio
async def test_rejected_refresh_rereads_store_first(redis_pair: tuple[Redis, Redis]) -> None:
    """A 400 after another replica rotated the pair returns that replica's token."""
    endpoint = RotatingTokenEndpoint()
    redis, _ = redis_pair
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
        manager = TokenManager(
            redis,
            XApiClient(http, base_url="https://x.test"),
            [ACCOUNT],
            clock=Clock(),
            secret=lookup,
        )
        await manager.auth_for("a")
        endpoint.valid.clear()  # our stored refresh token is already spent at X

        async def another_replica_rotates() -> None:
            # The stored pair changes while our refresh is on the wire.
            found = await store(redis).read("a")
            assert found is not None
            await store(redis).replace("a", found[1], StoredTokens("access-9", "refresh-9", None))

        endpoint.on_request = another_replica_rotates
        auth = await manager.refresh("a", "access-0")
    assert auth.access_token == "access-9"


@pytest.mark.anyio
async def test_spent_refresh_token_needs_reauthorisation(redis_pair: tuple[Redis, Redis]) -> None:
    """A refresh token X refuses, with nothing newer in the store, is an operator problem."""
    endpoint = RotatingTokenEndpoint()
    endpoint.valid.clear()
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
        manager = TokenManager(
            redis_pair[0],
            XApiClient(http, base_url="https://x.test"),
            [ACCOUNT],
            clock=Clock(),
            secret=lookup,
        )
        with pytest.raises(CredentialsError, match="re-authorise"):
            await manager.refresh("a", (await manager.auth_for("a")).access_token)


@pytest.mark.anyio
async def test_expiring_token_is_refreshed_before_use(redis_pair: tuple[Redis, Redis]) -> None:
    """auth_for() refreshes a token inside the leeway instead of sending it to X."""
    endpoint = RotatingTokenEndpoint()
    clock = Clock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
        manager = TokenManager(
            redis_pair[0],
            XApiClient(http, base_url="https://x.test"),
            [ACCOUNT],
            clock=clock,
            secret=lookup,
            leeway_s=60,
        )
        await manager.refresh("a", (await manager.auth_for("a")).access_token)
        clock.now += 7200 - 30
        auth = await manager.auth_for("a")
    assert auth.access_token == "access-2"
    assert endpoint.calls == 2


@pytest.mark.anyio
async def test_oauth1_accounts_have_no_refresh(redis_pair: tuple[Redis, Redis]) -> None:
    """OAuth 1.0a credentials are built from four secrets and cannot be refreshed."""
    account = XAccountSettings(
        name="o",
        user_id="2",
        auth="oauth1",
        consumer_key_secret="CK",
        consumer_secret_secret="CS",
        access_token_secret="AT",
        token_secret_secret="TS",
    )
    values = {"CK": "ck", "CS": "cs", "AT": "at", "TS": "ts"}

    async def secret(name: str) -> str | None:
        return values.get(name)

    async with httpx.AsyncClient() as http:
        manager = TokenManager(
            redis_pair[0], XApiClient(http), [account], clock=Clock(), secret=secret
        )
        auth = await manager.auth_for("o")
        assert auth.kind == "oauth1"
        with pytest.raises(CredentialsError, match="no refresh"):
            await manager.refresh("o", None)
