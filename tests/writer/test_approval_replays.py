"""Replays through the ledger, as an attacker with Redis write access tries them, end to end.

Each test runs the writer service against a real Redis and the fake X, tampers with the ledger
the way the security review did, and checks that X receives nothing (or nothing twice).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import (
    PRIVATE_KEY,
    SIGNER,
    WriterHarness,
    approved,
    running_writer,
    tweet,
    wait_until,
    writer_settings,
)
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import (
    Approval,
    ModerationStatus,
    WriteAction,
    WriteRequest,
    canonical_json,
    format_time,
    utcnow,
)
from twitstack.writes.signing import load_private_key
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """The fake's clock follows the wall clock, like the ledger's timestamps."""
    return XApiSandboxConfig()


async def approve_like_moderation(
    redis: Redis, ledger: RequestLedger, request: WriteRequest
) -> bytes:
    """Record `request` pending, approve it as the moderation service does; the queued bytes."""
    await ledger.record(request, actor="bot")
    record = await ledger.get(request.id)
    assert record is not None
    approval = SIGNER.sign(record.request, approver="alice")
    moved = await ledger.approve(request.id, approval, expected_revision=1, actor="alice")
    assert moved.ok
    [captured] = await redis.lrange(keys.WRITE_QUEUE, 0, -1)
    await redis.delete(keys.WRITE_QUEUE)  # the attacker keeps a copy
    return bytes(captured)


async def settled(writer: WriterHarness, reason: str) -> None:
    """Wait until the writer counted a refusal for `reason` and holds no message."""
    processing = keys.processing_list(writer.service.consumer_id)

    async def done() -> bool:
        counted = writer.metric("writer_security_events_total", reason=reason) >= 1
        idle = await writer.redis.llen(keys.WRITE_QUEUE) == 0
        return counted and idle and await writer.redis.llen(processing) == 0

    await wait_until(done)


async def test_a_rejected_request_flipped_back_to_approved_is_never_sent(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Approve, reject, then HSET state=approved and re-queue the signed message: not posted."""
    settings = writer_settings(make_settings, sandbox.base_url)
    ledger = RequestLedger(redis)
    request = tweet("the withdrawn text", author="bot")
    captured = await approve_like_moderation(redis, ledger, request)
    rejected = await ledger.transition(
        request.id, S.REJECTED, from_states=[S.APPROVED], actor="mod", reason="withdrawn"
    )
    assert rejected.ok
    await redis.hset(keys.request(request.id), "state", "approved")
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push_raw(captured)
        await writer.wait_states([request.id], {S.NEEDS_REVIEW})
        record = await writer.record(request.id)
    assert record.last_reason == "approval_tombstoned"
    assert sandbox.state.content.posts == {}


async def test_an_edited_request_rolled_back_in_redis_is_never_sent(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Approve rev 1, edit to rev 2, restore rev 1 as approved in Redis and re-queue: not posted."""
    settings = writer_settings(make_settings, sandbox.base_url)
    ledger = RequestLedger(redis)
    request = tweet("the text before the edit", author="bot")
    captured = await approve_like_moderation(redis, ledger, request)
    old_hash = await redis.hgetall(keys.request(request.id))
    edited = await ledger.edit(request.id, {"text": "edited"}, expected_revision=1, actor="mod")
    assert edited.ok
    await redis.hset(
        keys.request(request.id),
        mapping={"request": old_hash[b"request"], "revision": "1", "state": "approved"},
    )
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push_raw(captured)
        await writer.wait_states([request.id], {S.NEEDS_REVIEW})
        record = await writer.record(request.id)
    assert record.last_reason == "approval_spent"
    assert sandbox.state.content.posts == {}


async def test_an_executed_dm_deleted_from_the_ledger_is_not_sent_again(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """DEL the executed DM's hash and re-push the captured message: still one DM; then DEL
    its tombstone too: the spent approval still refuses it."""
    settings = writer_settings(make_settings, sandbox.base_url)
    dm = approved(
        WriteRequest(action=WriteAction.DM, payload={"recipient_id": "1001", "text": "once"})
    )
    captured = encode_write_request(dm)
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push_raw(captured)
        await writer.wait_states([dm.id], {S.EXECUTED})
        assert len(sandbox.state.content.dms) == 1
        await redis.delete(keys.request(dm.id))
        await writer.push_raw(captured)
        await settled(writer, "tombstoned")
        assert len(sandbox.state.content.dms) == 1
        await redis.delete(keys.request(dm.id), keys.tombstone(dm.id))
        await writer.push_raw(captured)
        await writer.wait_states([dm.id], {S.NEEDS_REVIEW})
        await settled(writer, "spent")
    assert len(sandbox.state.content.dms) == 1


async def test_an_embargoed_post_with_its_not_before_stripped_is_not_sent_early(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """not_before removed from the ledger copy and the message: held for review, not posted."""
    settings = writer_settings(make_settings, sandbox.base_url)
    ledger = RequestLedger(redis)
    request = approved(tweet("embargoed news", not_before=utcnow() + timedelta(hours=6)))
    assert (await ledger.record(request, actor="moderation")).scheduled
    stored = json.loads(await redis.hget(keys.request(request.id), "request") or b"{}")
    del stored["not_before"]
    stripped = json.dumps(stored, separators=(",", ":")).encode("utf-8")
    await redis.hset(keys.request(request.id), "request", stripped)
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push_raw(stripped)
        await writer.wait_states([request.id], {S.NEEDS_REVIEW})
        record = await writer.record(request.id)
    assert record.last_reason == "approval_bad_signature"
    assert sandbox.state.content.posts == {}


def _v1_approval(request: WriteRequest) -> Approval:
    """An approval exactly as the previous release signed it (no nonce, schedule unsigned)."""
    when = utcnow()
    body = {"action": request.action.value, "account": request.account, "payload": request.payload}
    message = canonical_json(
        [
            "twitstack.approval.v1",
            request.id,
            request.revision,
            request.action.value,
            request.account,
            hashlib.sha256(canonical_json(body)).hexdigest(),
            "alice",
            format_time(when),
        ]
    )
    signature = load_private_key(PRIVATE_KEY).sign(message)
    return Approval(
        key_id=SIGNER.key_id,
        approver="alice",
        approved_at=when,
        signature=base64.urlsafe_b64encode(signature).decode("ascii").rstrip("="),
    )


async def test_an_old_format_approval_goes_to_review_with_a_clear_reason(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Upgrade: a message signed in the v1 format is held for a human, never sent."""
    settings = writer_settings(make_settings, sandbox.base_url)
    request = tweet("approved before the upgrade")
    old = replace(request, moderation=S.APPROVED, approval=_v1_approval(request))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(old)
        await writer.wait_states([request.id], {S.NEEDS_REVIEW})
        record = await writer.record(request.id)
    assert record.last_reason == "approval_old_format"
    assert sandbox.state.content.posts == {}
