"""The writer under X's failure modes: commit-then-fail, 5xx, expired tokens, reconciliation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import (
    DEFAULT_BEARER_TOKEN,
    Endpoint,
    FaultKind,
    FaultSettings,
    LimitScope,
    WindowLimit,
    XApiSandboxConfig,
)
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest

S = ModerationStatus
pytestmark = pytest.mark.anyio
FAULTS = FaultSettings(
    rates={
        FaultKind.COMMIT_THEN_503: 0.04,
        FaultKind.COMMIT_THEN_RESET: 0.03,
        FaultKind.COMMIT_THEN_TIMEOUT: 0.03,
        FaultKind.ERROR_503: 0.05,  # not committed: reconciliation must find it absent, re-send
    },
    latency_s=2.5,  # past the writer's 1 s read timeout
    seed=7,
)


@pytest.fixture
def sandbox_config(request: pytest.FixtureRequest) -> XApiSandboxConfig:
    faults = getattr(request, "param", FAULTS)
    # Re-sends and 503s count against X's 100-per-15-minutes; this test is about faults.
    roomy = (WindowLimit(scope=LimitScope.USER, limit=10_000, window_s=900),)
    return XApiSandboxConfig(faults=faults, rate_limits={Endpoint.CREATE_TWEET: roomy})


async def test_commit_then_fail_never_duplicates(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """With 10% of posts committed-then-failed and 5% plain 503s, every tweet exists once."""
    settings = writer_settings(
        make_settings, sandbox.base_url, read_timeout_s=1.0, concurrency=8, transient_attempts=1
    )
    requests = [approved(tweet(f"fault test {i} {i * 7919}")) for i in range(100)]
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(*requests)
        await writer.wait_states([r.id for r in requests], {S.EXECUTED}, timeout_s=60)
        records = [await writer.record(r.id) for r in requests]
        reconciled = writer.metric("writer_reconciliations_total", result="found")
        resent = writer.metric("writer_reconciliations_total", result="resent")
    counts = sandbox.state.content.post_text_counts()
    assert len(counts) == 100
    assert max(counts.values()) == 1
    posts = sandbox.state.content.posts
    for request, record in zip(requests, records, strict=True):
        assert record.result is not None
        assert posts[record.result["tweet_id"]].text == request.payload["text"]
    # The faults really happened and were settled by reading back, not by luck.
    assert reconciled >= 3
    assert resent >= 1


@pytest.mark.parametrize(
    "sandbox_config", [FaultSettings(rates={FaultKind.COMMIT_THEN_503: 1.0})], indirect=True
)
async def test_dm_that_cannot_be_read_back_needs_review(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """An ambiguous DM on an account without DM read-back is left to a human, never re-sent."""
    settings = writer_settings(make_settings, sandbox.base_url)
    accounts = [a.model_copy(update={"dm_read_back": False}) for a in settings.writer.accounts]
    settings = writer_settings(
        make_settings, sandbox.base_url, accounts=[a.model_dump() for a in accounts]
    )
    dm = approved(
        WriteRequest(action=WriteAction.DM, payload={"recipient_id": "1001", "text": "hey"})
    )
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(dm)
        await writer.wait_states([dm.id], {S.NEEDS_REVIEW})
        record = await writer.record(dm.id)
    assert record.last_reason == "dm_not_readable"
    assert len(sandbox.state.content.dms) == 1


@pytest.mark.parametrize(
    "sandbox_config", [FaultSettings(rates={FaultKind.COMMIT_THEN_503: 1.0})], indirect=True
)
async def test_ambiguous_dm_is_found_by_reading_back(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """An ambiguous DM that X stored is found in the conversation and marked executed."""
    settings = writer_settings(make_settings, sandbox.base_url)
    dm = approved(
        WriteRequest(action=WriteAction.DM, payload={"recipient_id": "1001", "text": "yo"})
    )
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(dm)
        await writer.wait_states([dm.id], {S.EXECUTED})
        record = await writer.record(dm.id)
    assert record.result is not None
    assert record.result["reconciled"] is True
    assert record.result["dm_event_id"] == sandbox.state.content.dms[0].id


@pytest.mark.parametrize("sandbox_config", [FaultSettings()], indirect=True)
async def test_expired_token_refreshed_once_by_concurrent_workers(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Eight workers meet a revoked token at once: one refresh at X, every tweet posted."""
    settings = writer_settings(make_settings, sandbox.base_url, concurrency=8)
    sandbox.state.tokens.expire_bearer(DEFAULT_BEARER_TOKEN)
    requests = [approved(tweet(f"after expiry {i}")) for i in range(30)]
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(*requests)
        await writer.wait_states([r.id for r in requests], {S.EXECUTED})
        refreshes = writer.metric("writer_token_refreshes_total", account="default")
    assert sandbox.state.tokens.counters.calls == 1
    assert sandbox.state.tokens.counters.succeeded == 1
    assert refreshes == 1
    assert len(sandbox.state.content.posts) == 30
