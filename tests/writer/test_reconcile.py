"""Reconciliation of unknown requests: read-back, bounded re-sends, duplicates, crashed attempts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import Endpoint, FaultKind, XApiSandboxConfig
from twitstack.sandbox.xapi.faults import ScriptedResponse, ScriptEntry
from twitstack.writer.reconcile import Verdict
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, utcnow

S = ModerationStatus
pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()


async def test_duplicate_after_ambiguous_attempt_is_reconciled_not_failed(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Commit-then-503, a lagging read-back, a re-send refused as duplicate: executed, 1 post."""
    faults = sandbox.state.faults
    faults.script(Endpoint.CREATE_TWEET, [ScriptEntry(fault=FaultKind.COMMIT_THEN_503)])
    lagging = ScriptedResponse(status=200, body={"data": [], "meta": {"result_count": 0}})
    faults.script(Endpoint.USER_TWEETS, [ScriptEntry(response=lagging)])
    # No grace: the lagging read-back alone leads to a re-send.
    settings = writer_settings(make_settings, sandbox.base_url, reconcile_grace_s=0)
    request = approved(tweet("posted despite the 503"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
        record = await writer.record(request.id)
    posts = list(sandbox.state.content.posts.values())
    assert [p.text for p in posts] == ["posted despite the 503"]
    assert record.result is not None
    assert record.result["tweet_id"] == posts[0].id
    assert record.attempt == 2  # one re-send, refused by X as a duplicate


async def test_resends_are_bounded_then_a_human_decides(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """503 before commit every time: re-sent max_resend_cycles times, then needs_review."""
    sandbox.state.faults.script(
        Endpoint.CREATE_TWEET, [ScriptEntry(fault=FaultKind.ERROR_503) for _ in range(10)]
    )
    settings = writer_settings(make_settings, sandbox.base_url, max_resend_cycles=2)
    request = approved(tweet("never lands"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.NEEDS_REVIEW})
        record = await writer.record(request.id)
    assert record.last_reason == "absent_after_max_resends"
    assert record.attempt == 3
    assert sandbox.state.faults.pending()["create_tweet"] == 7
    assert sandbox.state.content.posts == {}


async def _abandon_in_sending(redis: Redis, text: str) -> str:
    """A request a crashed writer left `sending` (crash after the commit, before settling)."""
    ledger = RequestLedger(redis)
    request = approved(tweet(text))
    await ledger.record(request, actor="test")
    moved = await ledger.mark_sending(request.id, actor="crashed-writer")
    assert moved.ok
    return request.id


async def test_crash_after_x_accepted_is_found_not_resent(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """X has the tweet but the writer died before `executed`: found by read-back, not re-posted."""
    request_id = await _abandon_in_sending(redis, "made it to X")
    sandbox.state.content.create_post("1000", "made it to X", {"text": "made it to X"})
    settings = writer_settings(make_settings, sandbox.base_url, stale_sending_s=0.2)
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.wait_states([request_id], {S.EXECUTED})
        record = await writer.record(request_id)
    assert record.result is not None
    assert record.result["reconciled"] is True
    assert len(sandbox.state.content.posts) == 1


async def test_crash_before_the_post_left_is_resent_once(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """`sending` committed but nothing reached X: absent after the grace, sent exactly once."""
    request_id = await _abandon_in_sending(redis, "never reached X")
    settings = writer_settings(make_settings, sandbox.base_url, stale_sending_s=0.2)
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.wait_states([request_id], {S.EXECUTED})
    assert [p.text for p in sandbox.state.content.posts.values()] == ["never reached X"]


async def _bury_after_ambiguous_post(
    make_settings: Callable[..., Settings],
    redis: Redis,
    sandbox: RunningSandbox,
    *,
    text: str,
    newer_posts: int,
    final: set[ModerationStatus],
) -> tuple[ModerationStatus, str | None]:
    """Commit-then-503 for `text`, then `newer_posts` newer posts before any read-back runs."""
    faults = sandbox.state.faults
    faults.script(Endpoint.CREATE_TWEET, [ScriptEntry(fault=FaultKind.COMMIT_THEN_503)])
    # Hold read-backs off (each sweep defers on a 503) while the timeline fills up.
    faults.script(Endpoint.USER_TWEETS, [ScriptEntry(fault=FaultKind.ERROR_503)] * 5)
    settings = writer_settings(make_settings, sandbox.base_url, reconcile_grace_s=0)
    request = approved(tweet(text))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.UNKNOWN})
        for index in range(newer_posts):
            sandbox.state.content.create_post("1000", f"newer {index}", {"text": f"newer {index}"})
        await writer.wait_states([request.id], final)
        record = await writer.record(request.id)
    return record.state, record.last_reason


async def test_post_deeper_than_the_shared_read_is_found_not_resent(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """600 newer posts push ours past the sweep's 5 pages: a read of its own finds it."""
    text = "buried under newer posts"
    state, _ = await _bury_after_ambiguous_post(
        make_settings, redis, sandbox, text=text, newer_posts=600, final={S.EXECUTED}
    )
    assert state is S.EXECUTED
    assert [p.text for p in sandbox.state.content.posts.values()].count(text) == 1


async def test_read_back_that_cannot_reach_the_post_goes_to_review_not_resent(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """More newer posts than any read-back reaches: not seen is not absent; a human decides."""
    text = "beyond every read-back"
    state, reason = await _bury_after_ambiguous_post(
        make_settings, redis, sandbox, text=text, newer_posts=2100, final={S.NEEDS_REVIEW}
    )
    assert (state, reason) == (S.NEEDS_REVIEW, "read_back_incomplete")
    assert [p.text for p in sandbox.state.content.posts.values()].count(text) == 1


async def test_a_refused_stale_resend_neither_moves_nor_spends_a_resend_cycle(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A verdict about attempt 1 arrives after attempt 2 went `unknown`: the ledger refuses it,
    the request stays `unknown` for a look at attempt 2, and no re-send cycle is counted (two
    replicas racing on one request used to reach absent_after_max_resends early)."""
    settings = writer_settings(make_settings, sandbox.base_url, reconcile_grace_s=3600)
    request = approved(tweet("stale verdict"))
    ledger = RequestLedger(redis)
    await ledger.record(request, actor="test")
    for attempt in (1, 2):
        assert (await ledger.mark_sending(request.id, actor="writer:other")).ok
        moved = await ledger.transition(
            request.id, S.UNKNOWN, from_states=[S.SENDING], actor="writer:other", reason="503"
        )
        assert moved.attempt == attempt
        if attempt == 1:
            stale = await ledger.get(request.id)
            assert (await ledger.retry_later(request.id, not_before=utcnow(), actor="t",
                                             reason="r", from_states=[S.UNKNOWN])).ok  # fmt: skip
    assert stale is not None
    async with running_writer(settings, redis, sandbox) as writer:
        verdict = await writer.service.reconciler._resend(
            stale, reason="reconciled_absent_resend", count=True
        )
        record = await writer.record(request.id)
    assert verdict is Verdict.SKIPPED
    assert record.state is S.UNKNOWN
    assert record.attempt == 2
    assert await redis.hget(keys.writer_notes(request.id), "resends") is None
