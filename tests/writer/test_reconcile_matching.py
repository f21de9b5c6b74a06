"""Reconciliation finds exactly its own post: HTML references, link and whitespace variants."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, writer_settings
from tests.writer.test_matching import HTML_TEXTS
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import Endpoint, FaultKind, XApiSandboxConfig
from twitstack.sandbox.xapi.faults import ScriptEntry
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest

S = ModerationStatus
pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()


def dm(text: str) -> WriteRequest:
    return WriteRequest(action=WriteAction.DM, payload={"recipient_id": "1001", "text": text})


async def test_tweets_with_html_references_are_found_after_commit_then_503(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Each text was posted once despite the 503: found by read-back, never sent again."""
    commits = [ScriptEntry(fault=FaultKind.COMMIT_THEN_503) for _ in HTML_TEXTS]
    sandbox.state.faults.script(Endpoint.CREATE_TWEET, commits)
    settings = writer_settings(make_settings, sandbox.base_url, concurrency=1)
    requests = [approved(tweet(text)) for text in HTML_TEXTS]
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(*requests)
        await writer.wait_states([r.id for r in requests], {S.EXECUTED, S.NEEDS_REVIEW})
        records = [await writer.record(r.id) for r in requests]
    posts = {p.text: p.id for p in sandbox.state.content.posts.values()}
    assert sorted(posts) == sorted(HTML_TEXTS)  # each once, none lost
    for text, record in zip(HTML_TEXTS, records, strict=True):
        assert (record.state, record.last_reason) == (S.EXECUTED, "reconciled_found"), text
        assert record.result is not None
        assert record.result["tweet_id"] == posts[text]
        assert record.attempt == 1


async def test_dms_with_html_references_are_found_after_commit_then_503(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """X has no duplicate check for DMs: a miss would send each one twice."""
    commits = [ScriptEntry(fault=FaultKind.COMMIT_THEN_503) for _ in HTML_TEXTS]
    sandbox.state.faults.script(Endpoint.CREATE_DM, commits)
    settings = writer_settings(make_settings, sandbox.base_url, concurrency=1)
    requests = [approved(dm(text)) for text in HTML_TEXTS]
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(*requests)
        await writer.wait_states([r.id for r in requests], {S.EXECUTED, S.NEEDS_REVIEW})
        records = [await writer.record(r.id) for r in requests]
    sent = {m.text: m.id for m in sandbox.state.content.dms}
    assert len(sandbox.state.content.dms) == len(HTML_TEXTS)
    for text, record in zip(HTML_TEXTS, records, strict=True):
        assert (record.state, record.last_reason) == (S.EXECUTED, "reconciled_found"), text
        assert record.result is not None
        assert record.result["dm_event_id"] == sent[text]
