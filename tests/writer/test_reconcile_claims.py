"""An ambiguous request never takes another request's post: links, whitespace, claims, review."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import WriterHarness, approved, running_writer, tweet, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import Endpoint, FaultKind, XApiSandboxConfig
from twitstack.sandbox.xapi.faults import ScriptEntry
from twitstack.writes.claims import PostClaims
from twitstack.writes.models import ModerationStatus

S = ModerationStatus
pytestmark = pytest.mark.anyio
_HOLD_READS = 2_000  # scripted 503s on the timeline read: reconciliation waits while B posts


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """Real clock; reads unlimited so the held-off sweeps cannot exhaust a window."""
    return XApiSandboxConfig(rate_limits={Endpoint.USER_TWEETS: ()})


async def _a_fails_then_b_posts(
    writer: WriterHarness, sandbox: RunningSandbox, text_a: str, text_b: str
) -> tuple[str, str]:
    """A's attempt gets a 503 before anything is stored; B is posted while A waits."""
    faults = sandbox.state.faults
    faults.script(Endpoint.CREATE_TWEET, [ScriptEntry(fault=FaultKind.ERROR_503)])
    faults.script(Endpoint.USER_TWEETS, [ScriptEntry(fault=FaultKind.ERROR_503)] * _HOLD_READS)
    request_a, request_b = approved(tweet(text_a)), approved(tweet(text_b))
    await writer.push(request_a)
    await writer.wait_states([request_a.id], {S.UNKNOWN})
    await writer.push(request_b)
    await writer.wait_states([request_b.id], {S.EXECUTED})
    faults.clear()  # the read-backs go through from now on
    await writer.wait_states([request_a.id], {S.EXECUTED, S.NEEDS_REVIEW})
    return request_a.id, request_b.id


@pytest.mark.parametrize(
    ("text_a", "text_b"),
    [
        ("release notes https://example.com/v1", "release notes https://example.com/v2"),
        ("see example.com today", "see example.org today"),
        ("two  spaces here", "two spaces here"),
        ("line\nbreak", "line break"),
    ],
)
async def test_link_or_whitespace_variant_is_not_claimed(
    make_settings: Callable[..., Settings],
    redis: Redis,
    sandbox: RunningSandbox,
    text_a: str,
    text_b: str,
) -> None:
    """A is found absent and posted itself; it never records B's tweet id."""
    settings = writer_settings(make_settings, sandbox.base_url, concurrency=1)
    async with running_writer(settings, redis, sandbox) as writer:
        id_a, id_b = await _a_fails_then_b_posts(writer, sandbox, text_a, text_b)
        record_a, record_b = await writer.record(id_a), await writer.record(id_b)
    assert record_b.result is not None
    assert record_a.result is not None
    assert record_a.state is S.EXECUTED
    assert record_a.result["tweet_id"] != record_b.result["tweet_id"]
    posts = {p.id: p.text for p in sandbox.state.content.posts.values()}
    assert posts[record_a.result["tweet_id"]] == text_a
    assert sorted(posts.values()) == sorted([text_a, text_b])


async def test_identical_text_posted_by_another_request_is_never_claimed(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """B's post is B's (claimed when X answered 201): A may end in review, never with B's id."""
    settings = writer_settings(make_settings, sandbox.base_url, concurrency=1)
    async with running_writer(settings, redis, sandbox) as writer:
        id_a, id_b = await _a_fails_then_b_posts(writer, sandbox, "same words", "same words")
        record_a, record_b = await writer.record(id_a), await writer.record(id_b)
    assert record_b.result is not None
    post_b = record_b.result["tweet_id"]
    assert record_a.result is None or record_a.result.get("tweet_id") != post_b
    # X refused A's re-sends as duplicates of B: a human decides, nothing posted twice.
    assert (record_a.state, record_a.last_reason) == (S.NEEDS_REVIEW, "absent_after_max_resends")
    assert [p.id for p in sandbox.state.content.posts.values()] == [post_b]
    assert await PostClaims(redis, retention_s=60).holders("tweet", [post_b]) == {post_b: id_b}


async def test_two_matching_posts_go_to_review(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Two unclaimed posts match in the attempt's window: nobody can say which is A's."""
    faults = sandbox.state.faults
    faults.script(Endpoint.CREATE_TWEET, [ScriptEntry(fault=FaultKind.ERROR_503)])
    faults.script(Endpoint.USER_TWEETS, [ScriptEntry(fault=FaultKind.ERROR_503)] * _HOLD_READS)
    settings = writer_settings(make_settings, sandbox.base_url, concurrency=1)
    request = approved(tweet("twice outside the writer"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.UNKNOWN})
        for _ in range(2):  # posted by hand on the account, bypassing X's duplicate check
            body = {"text": "twice outside the writer"}
            sandbox.state.content.create_post("1000", body["text"], body)
        faults.clear()
        await writer.wait_states([request.id], {S.EXECUTED, S.NEEDS_REVIEW})
        record = await writer.record(request.id)
    assert (record.state, record.last_reason) == (S.NEEDS_REVIEW, "ambiguous_match:2_posts")
    assert len(sandbox.state.content.posts) == 2


async def test_a_post_id_is_claimed_once(redis: Redis) -> None:
    """The first claim wins and holds; a second request gets the holder back."""
    claims = PostClaims(redis, retention_s=60)
    assert await claims.claim("tweet", "7", "request-a") == "request-a"
    assert await claims.claim("tweet", "7", "request-b") == "request-a"
    assert await claims.claim("dm", "7", "request-b") == "request-b"  # DM ids are separate
    assert await claims.holders("tweet", ["7", "8"]) == {"7": "request-a"}
    assert 0 < await redis.ttl("writes:post_claim:tweet:7") <= 60


async def test_post_made_after_the_attempt_window_is_not_claimed(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """The same text posted a minute after A's failed attempt cannot be A's post."""
    faults = sandbox.state.faults
    faults.script(Endpoint.CREATE_TWEET, [ScriptEntry(fault=FaultKind.ERROR_503)])
    faults.script(Endpoint.USER_TWEETS, [ScriptEntry(fault=FaultKind.ERROR_503)] * _HOLD_READS)
    settings = writer_settings(make_settings, sandbox.base_url, reconcile_window_slack_s=10)
    request = approved(tweet("later by hand"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.UNKNOWN})
        sandbox.state.clock.advance(60)  # X's clock and the writer's (the harness shares it)
        late = sandbox.state.content.create_post("1000", "later by hand", {"text": "x"})
        faults.clear()
        await writer.wait_states([request.id], {S.EXECUTED, S.NEEDS_REVIEW})
        record = await writer.record(request.id)
    assert record.result is None or record.result.get("tweet_id") != late.id
    assert [p.id for p in sandbox.state.content.posts.values()] == [late.id]
