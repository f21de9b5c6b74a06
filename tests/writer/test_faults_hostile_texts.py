"""The release gate's matcher-hostile texts under commit-then-fail faults, in one process.

HTML character references, link-only and whitespace-only variants, DMs with references and
3-part threads: with a third of the writes committed-then-failed or failed before commit,
every request (every thread part) is posted exactly once and records its own post's id.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.gate.traffic import rpush_text
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import (
    Endpoint,
    FaultKind,
    FaultSettings,
    LimitScope,
    WindowLimit,
    XApiSandboxConfig,
)
from twitstack.writes.models import ModerationStatus, WriteRequest

S = ModerationStatus
pytestmark = pytest.mark.anyio
REQUESTS = 80


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    faults = FaultSettings(
        rates={
            FaultKind.COMMIT_THEN_503: 0.12,
            FaultKind.COMMIT_THEN_RESET: 0.08,
            FaultKind.COMMIT_THEN_TIMEOUT: 0.05,
            FaultKind.ERROR_503: 0.08,
        },
        latency_s=2.5,  # past the writer's 1 s read timeout
        endpoints=(Endpoint.CREATE_TWEET, Endpoint.CREATE_DM),
        seed=12,
    )
    roomy = (WindowLimit(scope=LimitScope.USER, limit=10_000, window_s=900),)
    return XApiSandboxConfig(
        faults=faults, rate_limits={Endpoint.CREATE_TWEET: roomy, Endpoint.CREATE_DM: roomy}
    )


async def test_hostile_texts_under_commit_then_fail_are_posted_once(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """0 lost, 0 duplicated, each record's id is its own post or DM."""
    settings = writer_settings(
        make_settings, sandbox.base_url, read_timeout_s=1.0, concurrency=8, transient_attempts=1
    )
    requests = []
    for index in range(REQUESTS):
        action, payload, _ = rpush_text(index, "hostile")
        requests.append(approved(WriteRequest(action=action, payload=payload)))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(*requests)
        await writer.wait_states([r.id for r in requests], {S.EXECUTED}, timeout_s=90)
        records = [await writer.record(r.id) for r in requests]
        reconciled = writer.metric("writer_reconciliations_total", result="found")
    content = sandbox.state.content
    sent = [text for r in requests for text in _texts(r)]
    stored = [p.text for p in content.posts.values()] + [m.text for m in content.dms]
    assert sorted(stored) == sorted(sent)  # each exactly once, none lost
    posts, dms = content.posts, {m.id: m.text for m in content.dms}
    for request, record in zip(requests, records, strict=True):
        assert record.result is not None
        if "thread_ids" in record.result:
            # A thread (one in ten): its parts in order, each answering the one before.
            ids = record.result["thread_ids"]
            assert [posts[i].text for i in ids] == _texts(request)
            assert [posts[i].reply_to for i in ids] == [None, *ids[:-1]]
        elif "tweet_id" in record.result:
            assert posts[record.result["tweet_id"]].text == request.payload["text"]
        else:
            assert dms[record.result["dm_event_id"]] == request.payload["text"]
    assert reconciled >= 5  # the faults happened and were settled by reading back


def _texts(request: WriteRequest) -> list[str]:
    """What a request posts: its text, or each part's of a thread."""
    parts = request.payload.get("parts")
    if isinstance(parts, list):
        return [str(part["text"]) for part in parts]
    return [str(request.payload["text"])]
