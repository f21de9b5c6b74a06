"""OAuth 2.0 tokens sealed at rest: no usable token in Redis, tampering refused, migration, keys."""

from __future__ import annotations

import stat
from collections.abc import Callable

import anyio
import httpx
import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, wait_until, writer_settings
from tests.writer.test_tokens import ACCOUNT, Clock, RotatingTokenEndpoint
from twitstack.core.config import Settings
from twitstack.core.sealing import KeyRingError, SealingKeyRing, generate_key_ring
from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN, DEFAULT_REFRESH_TOKEN
from twitstack.writer.ratelimit import AccountPauses
from twitstack.writer.service import WriterService
from twitstack.writer.tokens import CredentialsError, TokenManager
from twitstack.writer.xapi_client import XApiClient
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.token_store import (
    DEV_KEY_FILE,
    SEALING_KEYS_SECRET,
    SealedTokenStore,
    StoredTokens,
)

pytestmark = pytest.mark.anyio

# Long, distinctive values, as real tokens are: easy to find in a dump if they leak.
ACCESS = "AAAAaccess0-" + "x" * 40
REFRESH = "RRRRrefresh0-" + "y" * 40
RING = generate_key_ring("k1")


def store(redis: Redis, ring_text: str = RING) -> SealedTokenStore:
    async def ring() -> SealingKeyRing:
        return SealingKeyRing.parse(ring_text, source="test")

    return SealedTokenStore(redis, ring)


def manager(redis: Redis, client: XApiClient, ring_text: str = RING) -> TokenManager:
    values = {"A_ACCESS": ACCESS, "A_REFRESH": REFRESH, SEALING_KEYS_SECRET: ring_text}

    async def lookup(name: str) -> str | None:
        return values.get(name)

    return TokenManager(redis, client, [ACCOUNT], clock=Clock(), secret=lookup)


async def every_value(redis: Redis) -> bytes:
    """Everything Redis holds, as one byte string (key names and values of every type)."""
    dump: list[bytes] = []
    async for key in redis.scan_iter(count=500):
        dump.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            dump.append(await redis.get(key))
        elif kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                dump += [field, value]
        elif kind == "list":
            dump += await redis.lrange(key, 0, -1)
        elif kind == "set":
            dump += list(await redis.smembers(key))
        elif kind == "zset":
            dump += [m for m, _ in await redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for _, fields in await redis.xrange(key):
                for field, value in fields.items():
                    dump += [field, value]
    return b"\n".join(dump)


async def test_redis_holds_no_usable_token(redis: Redis) -> None:
    """After seeding and a refresh, no access or refresh token appears anywhere in Redis."""
    endpoint = RotatingTokenEndpoint()
    endpoint.valid = {REFRESH}
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
        tokens = manager(redis, XApiClient(http, base_url="https://x.test"))
        first = await tokens.auth_for("a")
        assert first.access_token == ACCESS
        fresh = await tokens.refresh("a", ACCESS)
    assert fresh.access_token == "access-1"
    dump = await every_value(redis)
    for secret in (ACCESS, REFRESH, "access-1", "refresh-1"):
        assert secret.encode() not in dump
    blob = await redis.get(keys.sealed_oauth2_tokens("a"))
    assert blob is not None
    assert blob.startswith(b"ts1.k1.")
    public = await redis.hgetall(keys.oauth2_tokens("a"))
    assert set(public) == {b"expires_at", b"version", b"refreshed_at"}


async def test_blob_copied_to_another_account_is_refused(redis: Redis) -> None:
    """A sealed pair moved to another account's key does not open there."""
    await store(redis).seed("a", StoredTokens(ACCESS, REFRESH, None))
    blob = await redis.get(keys.sealed_oauth2_tokens("a"))
    await redis.set(keys.sealed_oauth2_tokens("b"), blob)
    other = store(redis)
    with pytest.raises(Exception, match="does not authenticate"):
        await other.read("b")


async def test_tampered_blob_is_refused_with_a_reason(redis: Redis) -> None:
    """An altered blob is a CredentialsError naming the cause, not a crash or a garbage token."""
    await store(redis).seed("a", StoredTokens(ACCESS, REFRESH, None))
    blob = (await redis.get(keys.sealed_oauth2_tokens("a"))).decode()
    await redis.set(
        keys.sealed_oauth2_tokens("a"), blob[:-3] + ("A" if blob[-3] != "A" else "B") + blob[-2:]
    )
    async with httpx.AsyncClient() as http:
        tokens = manager(redis, XApiClient(http, base_url="https://x.test"))
        with capture_logs() as logs, pytest.raises(CredentialsError, match="refused"):
            await tokens.auth_for("a")
    assert [e["event"] for e in logs] == ["writer.token_unsealable"]


async def test_tampered_token_pauses_the_account_and_the_writer_keeps_running(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """The writer pauses the account (reason `credentials`), posts nothing, and recovers."""
    settings = writer_settings(make_settings, sandbox.base_url)
    secrets = {SEALING_KEYS_SECRET: RING}
    await store(redis).seed(
        "default", StoredTokens(DEFAULT_BEARER_TOKEN, DEFAULT_REFRESH_TOKEN, None)
    )
    good = await redis.get(keys.sealed_oauth2_tokens("default"))
    await redis.set(keys.sealed_oauth2_tokens("default"), good.replace(b"ts1.k1.", b"ts1.k1.AAAA"))
    request = approved(tweet("sealed token tampered"))
    async with running_writer(settings, redis, sandbox, secrets=secrets) as writer:
        await writer.push(request)
        pauses = AccountPauses(redis, clock=sandbox.state.clock.now, cache_s=0)

        async def paused() -> bool:
            return await pauses.paused("default") is not None

        await wait_until(paused, timeout_s=10)
        pause = await pauses.paused("default")
        assert pause is not None
        assert pause.reason == "credentials"
        assert sandbox.state.content.posts == {}
        # The operator restores the pair and resumes: the same request goes out.
        await redis.set(keys.sealed_oauth2_tokens("default"), good)
        await pauses.resume("default")
        # The request waits paused_recheck_s (on X's frozen clock) before it is tried again.
        sandbox.state.clock.advance(settings.writer.paused_recheck_s + 1)
        await writer.wait_states([request.id], {S.EXECUTED}, timeout_s=20)


async def test_plain_tokens_of_an_older_release_are_sealed_at_start(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A plain pair in the public hash is sealed at start, logged, and still works."""
    settings = writer_settings(make_settings, sandbox.base_url)
    await redis.hset(
        keys.oauth2_tokens("default"),
        mapping={
            "access_token": DEFAULT_BEARER_TOKEN,
            "refresh_token": DEFAULT_REFRESH_TOKEN,
            "expires_at": "",
            "version": 3,
        },
    )
    request = approved(tweet("after migration"))
    with capture_logs() as logs:
        async with running_writer(
            settings, redis, sandbox, secrets={SEALING_KEYS_SECRET: RING}
        ) as writer:
            sealed_events = [e for e in logs if e["event"] == "writer.plain_token_sealed"]
            assert [e["account"] for e in sealed_events] == ["default"]
            public = await redis.hgetall(keys.oauth2_tokens("default"))
            assert b"access_token" not in public
            assert b"refresh_token" not in public
            assert public[b"version"] == b"3"
            assert DEFAULT_BEARER_TOKEN.encode() not in await every_value(redis)
            await writer.push(request)
            await writer.wait_states([request.id], {S.EXECUTED})
    found = await store(redis).read("default")
    assert found is not None
    assert found[0].access_token == DEFAULT_BEARER_TOKEN


async def test_rotation_reseals_under_the_newest_key(redis: Redis) -> None:
    """With a new key first in the ring, a pair sealed under the old one is read and resealed."""
    await store(redis).seed("a", StoredTokens(ACCESS, REFRESH, None))
    rotated = f"{generate_key_ring('k2')},{RING}"
    async with httpx.AsyncClient() as http:
        client = XApiClient(http, base_url="https://x.test")
        with capture_logs() as logs:
            assert (await manager(redis, client, rotated).auth_for("a")).access_token == ACCESS
        assert "writer.token_resealed" in [e["event"] for e in logs]
        blob = await redis.get(keys.sealed_oauth2_tokens("a"))
        assert blob.startswith(b"ts1.k2.")
        # The old key can now be dropped from the ring.
        newest_only = rotated.split(",")[0]
        assert (await manager(redis, client, newest_only).auth_for("a")).access_token == ACCESS
        with pytest.raises(CredentialsError, match="'k2', which the key ring does not hold"):
            await manager(redis, client, generate_key_ring("k3")).auth_for("a")


async def test_prod_without_a_sealing_key_fails_the_start(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """In prod the writer refuses to start without TWITSTACK_SEALING_KEYS, saying what to set."""
    settings = writer_settings(make_settings, sandbox.base_url).model_copy(update={"env": "prod"})

    async def lookup(name: str) -> str | None:
        return {"DEMO_ACCESS": DEFAULT_BEARER_TOKEN}.get(name)

    service = WriterService(settings, redis, secret=lookup, clock=sandbox.state.clock.now)

    async def start() -> None:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                await tg.start(lambda task_status: service.run(task_status=task_status))
                service.request_stop()

    with pytest.raises(ExceptionGroup) as caught:
        await start()
    (error,) = caught.value.exceptions
    assert isinstance(error, KeyRingError)
    assert "TWITSTACK_SEALING_KEYS is not set" in str(error)
    assert not (settings.state_dir / DEV_KEY_FILE).exists()


async def test_dev_generates_a_private_key_file_and_reuses_it(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """In dev without the secret, data_dir gets a 0600 ring; a restart opens the same tokens."""
    settings = writer_settings(make_settings, sandbox.base_url)
    first, second = approved(tweet("dev one")), approved(tweet("dev two"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(first)
        await writer.wait_states([first.id], {S.EXECUTED})
    path = settings.state_dir / DEV_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_text()
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(second)
        await writer.wait_states([second.id], {S.EXECUTED})
    assert path.read_text() == content
    assert await AccountPauses(redis, clock=sandbox.state.clock.now).paused("default") is None
