"""The writer service end to end: queue, ledger, approval boundary, fake X, dead letters."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest

S = ModerationStatus
pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """The fake's clock follows the wall clock here, like the ledger's timestamps."""
    return XApiSandboxConfig()


async def test_executes_signed_approved_tweet(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A validly signed approved request is posted once and recorded executed with its id."""
    settings = writer_settings(make_settings, sandbox.base_url)
    request = approved(tweet("hello from the writer"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
        record = await writer.record(request.id)
        assert record.result is not None
        assert record.result["tweet_id"] in sandbox.state.content.posts
        assert writer.metric("writer_actions_processed_total", action="tweet") == 1
        assert await redis.llen(keys.processing_list(writer.service.consumer_id)) == 0


async def test_pending_request_waits_for_moderation(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """The seed's unsigned pending request is recorded for moderation and not posted."""
    settings = writer_settings(make_settings, sandbox.base_url)
    request = tweet("needs a moderator")
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.PENDING})
        await wait_until(lambda: _queue_empty(redis))
    assert sandbox.state.content.posts == {}


async def test_unsigned_or_tampered_approval_is_never_executed(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Forged or edited-after-approval requests land in needs_review with a security event."""
    settings = writer_settings(make_settings, sandbox.base_url)
    forged = dataclasses.replace(tweet("forged"), moderation=S.APPROVED)
    signed = approved(tweet("original text"))
    tampered = dataclasses.replace(signed, payload={"text": "tampered text"})
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(forged, tampered)
        await writer.wait_states([forged.id, tampered.id], {S.NEEDS_REVIEW})
        assert writer.metric("writer_security_events_total", reason="missing") == 1
        assert writer.metric("writer_security_events_total", reason="bad_signature") == 1
    assert sandbox.state.content.posts == {}


async def test_forged_approval_leaves_a_pending_request_pending(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A forged "approved" copy of a pending request does not move or post it."""
    settings = writer_settings(make_settings, sandbox.base_url)
    pending = tweet("awaiting review")
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(pending)
        await writer.wait_states([pending.id], {S.PENDING})
        await writer.push(dataclasses.replace(pending, moderation=S.APPROVED))
        await wait_until(lambda: _queue_empty(redis))
        await wait_until(
            lambda: _metric_at_least(
                writer.metric("writer_security_events_total", reason="missing")
            )
        )
        assert await writer.state(pending.id) is S.PENDING
    assert sandbox.state.content.posts == {}


async def test_require_approval_false_executes_pending(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """With the explicit opt-out, a pending request is auto-approved and posted."""
    settings = writer_settings(make_settings, sandbox.base_url, require_approval=False)
    request = tweet("trusted pipeline")
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
    assert [p.text for p in sandbox.state.content.posts.values()] == ["trusted pipeline"]


async def test_bad_messages_are_dead_lettered_and_work_goes_on(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Invalid JSON, NaN and an unknown action go to write_queue:dead; a good one still runs."""
    settings = writer_settings(make_settings, sandbox.base_url)
    good = approved(tweet("still working"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push_raw(b"{not json")
        await writer.push_raw(b'{"action":"tweet","payload":{"text":"x"},"revision":NaN}')
        await writer.push_raw(b'{"action":"like","payload":{}}')
        await writer.push(good)
        await writer.wait_states([good.id], {S.EXECUTED})
        dead = await writer.dead_letters()
        # Four workers take concurrently, so the dead-letter order is not the push order.
        assert sorted(d["reason"] for d in dead) == [
            "invalid_field",
            "invalid_json",
            "non_finite_number",
        ]
        assert writer.metric("writer_dead_letters_total", reason="invalid_json") == 1


async def test_same_request_pushed_five_times_posts_once(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Duplicate delivery of one approved request yields exactly one post."""
    settings = writer_settings(make_settings, sandbox.base_url)
    request = approved(tweet("only once"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(*[request] * 5)
        await writer.wait_states([request.id], {S.EXECUTED})
        await wait_until(lambda: _queue_empty(redis))
    assert sandbox.state.content.post_text_counts()["only once"] == 1


async def test_dm_and_delete_are_executed(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """DMs are sent; deletes remove the tweet, and a second delete counts as already gone."""
    settings = writer_settings(make_settings, sandbox.base_url)
    first = approved(tweet("to be deleted"))
    dm = approved(
        WriteRequest(action=WriteAction.DM, payload={"recipient_id": "1001", "text": "hi"})
    )
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(first, dm)
        await writer.wait_states([first.id, dm.id], {S.EXECUTED})
        result = (await writer.record(first.id)).result
        assert result is not None
        deletes = [
            approved(
                WriteRequest(action=WriteAction.DELETE, payload={"tweet_id": result["tweet_id"]})
            )
            for _ in range(2)
        ]
        await writer.push(deletes[0])
        await writer.wait_states([deletes[0].id], {S.EXECUTED})
        await writer.push(deletes[1])
        await writer.wait_states([deletes[1].id], {S.EXECUTED})
        gone = (await writer.record(deletes[1].id)).result
    assert gone is not None
    assert gone["already_gone"] is True
    assert result["tweet_id"] in sandbox.state.content.deleted
    assert [m.text for m in sandbox.state.content.dms] == ["hi"]


async def test_permanent_failures_keep_x_detail(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A DM to a user with closed DMs fails once, with X's detail, and is not retried."""
    settings = writer_settings(make_settings, sandbox.base_url)
    dm = approved(
        WriteRequest(action=WriteAction.DM, payload={"recipient_id": "1002", "text": "hi"})
    )
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(dm)
        await writer.wait_states([dm.id], {S.FAILED})
        record = await writer.record(dm.id)
    assert record.result is not None
    assert record.result["detail"]
    assert sandbox.state.content.dms == []


async def test_stop_finishes_in_flight_and_leaves_processing_empty(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """request_stop() lets in-flight requests settle; nothing is left in the processing list."""
    settings = writer_settings(make_settings, sandbox.base_url)
    requests = [approved(tweet(f"graceful {i}")) for i in range(20)]
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(*requests)
        await wait_until(lambda: _some_executed(writer.ledger, [r.id for r in requests]))
        writer.service.request_stop()
    states = [await writer.state(r.id) for r in requests]
    assert S.SENDING not in states
    assert await redis.llen(keys.processing_list(writer.service.consumer_id)) == 0
    # Whatever was not taken is still queued, and nothing was posted twice.
    assert max(sandbox.state.content.post_text_counts().values()) == 1


async def _queue_empty(redis: Redis) -> bool:
    return await redis.llen(keys.WRITE_QUEUE) == 0


async def _metric_at_least(value: float) -> bool:
    return value >= 1


async def _some_executed(ledger: RequestLedger, ids: list[str]) -> bool:
    records = await ledger.get_many(ids)
    return any(r.state is S.EXECUTED for r in records)


async def test_not_before_waits_in_the_schedule(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A request due in a few seconds is not posted before then, and is posted after."""
    settings = writer_settings(make_settings, sandbox.base_url)
    # Far enough ahead that a loaded machine (or the first request's lazy imports) cannot let
    # it fall due before the schedule is inspected.
    due = datetime.now(UTC) + timedelta(seconds=5)
    request = approved(tweet("later", not_before=due))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await wait_until(lambda: _queue_empty(redis))
        assert await redis.zscore(keys.SCHEDULE, request.id) is not None
        assert sandbox.state.content.posts == {}
        await writer.wait_states([request.id], {S.EXECUTED})
    post = next(iter(sandbox.state.content.posts.values()))
    assert post.created_at >= due.timestamp()


async def test_requests_past_expiry_become_expired(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """An approved request already past expires_at, and a pending one that lapses, expire."""
    settings = writer_settings(make_settings, sandbox.base_url)
    now = datetime.now(UTC)
    stale = approved(tweet("too late", expires_at=now - timedelta(seconds=1)))
    lapsing = tweet("nobody approved me", expires_at=now + timedelta(seconds=0.5))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(stale, lapsing)
        await writer.wait_states([stale.id, lapsing.id], {S.EXPIRED})
    assert sandbox.state.content.posts == {}


async def test_a_crashing_handler_dead_letters_and_flags_the_request(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """An unexpected error is dead-lettered (handler_error), flagged for review; work goes on."""
    base = writer_settings(make_settings, sandbox.base_url)
    broken = {"name": "broken", "user_id": "1001", "access_token_secret": "RAISE"}
    accounts = [a.model_dump() for a in base.writer.accounts] + [broken]
    settings = writer_settings(make_settings, sandbox.base_url, accounts=accounts)
    bad = approved(tweet("breaks the handler", account="broken"))
    good = approved(tweet("unaffected"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(bad, good)
        await writer.wait_states([bad.id], {S.NEEDS_REVIEW})
        await writer.wait_states([good.id], {S.EXECUTED})
        dead = await writer.dead_letters()
    assert [d["reason"] for d in dead] == ["handler_error"]
    assert "a bug in a secret backend" in dead[0]["detail"]


async def test_an_approved_request_for_an_unknown_account_waits_for_review(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """No handler error, no dead letter: needs_review with reason unknown_account, nothing sent."""
    settings = writer_settings(make_settings, sandbox.base_url)
    stray = approved(tweet("for an account this writer does not know", account="nobody"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(stray)
        await writer.wait_states([stray.id], {S.NEEDS_REVIEW, S.FAILED})
        record = await writer.record(stray.id)
        dead = await writer.dead_letters()
    assert (record.state, record.last_reason) == (S.NEEDS_REVIEW, "unknown_account")
    assert dead == []
    assert sandbox.state.content.posts == {}
