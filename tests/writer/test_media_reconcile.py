"""An ambiguous answer to a post with media: reconciliation finds it by text, the appended
media link and the media count, and nothing is posted twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from tests.support.media_files import png
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import Endpoint, FaultKind, XApiSandboxConfig
from twitstack.sandbox.xapi.faults import ScriptEntry
from twitstack.writes.media import Attachment
from twitstack.writes.media_store import ingest, open_configured_store
from twitstack.writes.models import ModerationStatus

S = ModerationStatus
pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()


async def test_commit_then_503_with_media_is_reconciled_once(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """X stores the post and answers 503: `unknown`, then found by read-back; one post."""
    settings = writer_settings(make_settings, sandbox.base_url)
    attachments = []
    async with open_configured_store(settings) as store:
        for seed in (1, 2):
            info = await ingest(store, [png(seed=seed)], tmp_dir=settings.state_dir / "tmp")
            attachments.append(Attachment(info.sha256, info.type, info.size, "alt").to_dict())
    text = "two photos, answer lost"
    request = approved(
        replace(tweet(text), payload={"text": text, "media": {"attachments": attachments}})
    )
    sandbox.state.faults.script(
        Endpoint.CREATE_TWEET, [ScriptEntry(fault=FaultKind.COMMIT_THEN_503)]
    )
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
        record = await writer.record(request.id)
    posts = list(sandbox.state.content.posts.values())
    assert [(p.text, len(p.media_ids)) for p in posts] == [(text, 2)]
    assert record.result is not None
    assert record.result["tweet_id"] == posts[0].id
    assert record.attempt == 1  # found by reconciliation, never sent again
    assert "reconcil" in str(record.last_reason), record.last_reason
