"""Operator-facing series and logs: token expiry, pauses that end, dead-letter depth, refusals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import httpx
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from structlog.testing import capture_logs

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, writer_settings
from twitstack.core.config import Settings
from twitstack.core.sealing import generate_key_ring
from twitstack.core.sections.writer import XAccountSettings
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.ratelimit import AccountPauses
from twitstack.writer.sweeps import sample_depths
from twitstack.writer.tokens import TokenManager
from twitstack.writer.xapi_client import XApiClient
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.queue import ReliableQueue
from twitstack.writes.token_store import SEALING_KEYS_SECRET

pytestmark = pytest.mark.anyio
ACCOUNT = XAccountSettings(name="a", user_id="1", client_id="cid", access_token_secret="A_ACCESS")


RING = generate_key_ring()


async def no_secret(name: str) -> str | None:
    return RING if name == SEALING_KEYS_SECRET else None


async def test_token_expiry_is_exported_whenever_tokens_are_loaded(redis: Redis) -> None:
    """A pair stored by another replica (or a previous run) sets the expiry series at once."""
    registry = CollectorRegistry()
    metrics = WriterMetrics(registry)
    await redis.hset(
        keys.oauth2_tokens("a"),
        mapping={"access_token": "acc", "refresh_token": "ref", "expires_at": "1900000000.0"},
    )
    async with httpx.AsyncClient() as http:
        tokens = TokenManager(
            redis, XApiClient(http), [ACCOUNT], clock=lambda: 1_800_000_000.0,
            secret=no_secret, metrics=metrics,
        )  # fmt: skip
        auth = await tokens.auth_for("a")
    assert auth.access_token == "acc"
    value = registry.get_sample_value("writer_token_expiry_timestamp_seconds", {"account": "a"})
    assert value == 1_900_000_000.0


async def test_paused_gauge_returns_to_zero_after_resume(redis: Redis) -> None:
    """A resume from the CLI (another process) or an expired pause shows up at the next sample."""
    registry = CollectorRegistry()
    metrics = WriterMetrics(registry)
    clock = [1_000.0]
    pauses = AccountPauses(redis, clock=lambda: clock[0], cache_s=0)
    queue = ReliableQueue(redis, "sampler")
    await pauses.pause("main", "usage_capped")
    await pauses.pause("side", "credits_depleted", until=1_010.0)

    async def sample() -> dict[str, float | None]:
        await sample_depths(redis, queue, metrics, pauses, ["main", "side"])
        return {
            name: registry.get_sample_value("writer_account_paused", {"account": name})
            for name in ("main", "side")
        }

    assert await sample() == {"main": 1.0, "side": 1.0}
    # `twitstack writer resume main` runs elsewhere: only Redis changes.
    assert await AccountPauses(redis, clock=lambda: clock[0]).resume("main")
    clock[0] = 1_011.0  # side's pause lapses on its own
    assert await sample() == {"main": 0.0, "side": 0.0}


async def test_dead_letter_depth_is_sampled(redis: Redis) -> None:
    """writer_dead_letter_depth follows the length of write_queue:dead."""
    registry = CollectorRegistry()
    metrics = WriterMetrics(registry)
    queue = ReliableQueue(redis, "sampler")
    pauses = AccountPauses(redis, clock=lambda: 0.0)
    await redis.rpush(keys.DEAD_LETTER, b"{}", b"{}", b"{}")
    await sample_depths(redis, queue, metrics, pauses, [])
    assert registry.get_sample_value("writer_dead_letter_depth") == 3.0
    await redis.delete(keys.DEAD_LETTER)
    await sample_depths(redis, queue, metrics, pauses, [])
    assert registry.get_sample_value("writer_dead_letter_depth") == 0.0


async def test_refused_approval_log_names_the_key_never_the_signature(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """writer.security_approval_refused carries key_id, so an operator can tell which key."""
    settings = writer_settings(make_settings, sandbox.base_url)
    good = approved(tweet("tampered after signing"))
    assert good.approval is not None
    tampered = replace(good, payload={"text": "something else"})
    with capture_logs() as logs:
        async with running_writer(settings, redis, sandbox) as writer:
            await writer.push(tampered)
            await writer.wait_states([tampered.id], {S.NEEDS_REVIEW})
    (refused,) = [e for e in logs if e["event"] == "writer.security_approval_refused"]
    assert refused["key_id"] == good.approval.key_id
    assert refused["reason"] == "bad_signature"
    assert good.approval.signature not in repr(refused)
    assert sandbox.state.content.posts == {}
