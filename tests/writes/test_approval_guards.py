"""The ledger's approval guards on a real Redis: byte CAS on approve, tombstones, spent nonces."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.ledger_types import TransitionStatus
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.scripts import lua_source
from twitstack.writes.signing import (
    ApprovalFailure,
    ApprovalSigner,
    ApprovalVerifier,
    generate_private_key,
)

S = ModerationStatus
pytestmark = pytest.mark.anyio
SIGNER = ApprovalSigner(generate_private_key())


def tweet(text: str = "hello", **fields: object) -> WriteRequest:
    return WriteRequest(
        action=WriteAction.TWEET, payload={"text": text}, id="r1", author="bot", **fields
    )  # type: ignore[arg-type]


async def approved_in_ledger(ledger: RequestLedger) -> WriteRequest:
    """Record r1 pending and approve it the moderation way; the approved request."""
    await ledger.record(tweet(), actor="bot")
    stored = await ledger.read("r1")
    assert stored is not None
    approval = SIGNER.sign(stored.record.request, approver="mod")
    result = await ledger.approve("r1", approval, expected_revision=1, actor="mod", read=stored)
    assert result.ok
    return replace(stored.record.request, moderation=S.APPROVED, approval=approval)


async def test_approve_refuses_a_record_swapped_by_raw_hset_since_it_was_read(
    redis: Redis,
) -> None:
    """Text swapped in Redis (same revision, no event) between read and approve: nothing moves."""
    ledger = RequestLedger(redis)
    await ledger.record(tweet("what the moderator saw"), actor="bot")
    stored = await ledger.read("r1")
    assert stored is not None
    swapped = replace(stored.record.request, payload={"text": "something else"})
    await redis.hset(keys.request("r1"), "request", json.dumps(swapped.to_dict()))
    approval = SIGNER.sign(stored.record.request, approver="mod")
    result = await ledger.approve("r1", approval, expected_revision=1, actor="mod", read=stored)
    assert result.status is TransitionStatus.CONTENT_MISMATCH
    assert await redis.llen(keys.WRITE_QUEUE) == 0
    record = await ledger.get("r1")
    assert record is not None
    assert (record.state, record.request.payload["text"]) == (S.PENDING, "something else")


async def test_a_resend_of_the_same_record_may_spend_its_approval_again(redis: Redis) -> None:
    """approved -> sending -> approved (429) -> sending: same record, same nonce: allowed."""
    ledger = RequestLedger(redis)
    request = await approved_in_ledger(ledger)
    assert (await ledger.mark_sending("r1", actor="w")).ok
    later = await ledger.retry_later("r1", not_before=request.created_at, actor="w", reason="429")
    assert later.ok
    assert (await ledger.mark_sending("r1", actor="w")).ok
    assert request.approval is not None
    assert request.approval.nonce is not None
    assert await redis.get(keys.spent_approval(request.approval.nonce)) == b"r1"


async def test_a_recreated_record_cannot_spend_an_approval_already_spent(redis: Redis) -> None:
    """Hash deleted mid-flight and the captured message recorded again: refused as spent."""
    ledger = RequestLedger(redis)
    request = await approved_in_ledger(ledger)
    assert (await ledger.mark_sending("r1", actor="w")).ok
    await redis.delete(keys.request("r1"))
    assert (await ledger.record(request, actor="attacker")).created
    refused = await ledger.mark_sending("r1", actor="w")
    assert refused.status is TransitionStatus.SPENT
    assert (await ledger.get("r1")).state is S.APPROVED  # type: ignore[union-attr]


async def test_leaving_approved_without_sending_revokes_the_approval(redis: Redis) -> None:
    """Rejected after approval, then flipped back to approved in Redis: sending is refused."""
    ledger = RequestLedger(redis)
    request = await approved_in_ledger(ledger)
    rejected = await ledger.transition(
        "r1", S.REJECTED, from_states=[S.APPROVED], actor="mod", reason="no"
    )
    assert rejected.ok
    assert request.approval is not None
    assert request.approval.nonce is not None
    assert await redis.get(keys.spent_approval(request.approval.nonce)) == b"revoked"
    assert await redis.get(keys.tombstone("r1")) == b"rejected"
    await redis.hset(keys.request("r1"), "state", "approved")
    refused = await ledger.mark_sending("r1", actor="w")
    assert refused.status is TransitionStatus.TOMBSTONED
    await redis.delete(keys.tombstone("r1"))
    assert (await ledger.mark_sending("r1", actor="w")).status is TransitionStatus.SPENT


async def test_a_final_id_is_never_recorded_again_while_its_tombstone_lives(
    redis: Redis,
) -> None:
    """executed, hash deleted: recording the same id again creates nothing; TTL = retention."""
    ledger = RequestLedger(redis, retention_s=7200)
    request = await approved_in_ledger(ledger)
    await ledger.mark_sending("r1", actor="w")
    done = await ledger.transition(
        "r1", S.EXECUTED, from_states=[S.SENDING], actor="w", reason="ok", result={"tweet_id": "1"}
    )
    assert done.ok
    # Retention plus the clock skew verifiers accept (lua/ledger_guards.lua).
    assert 7000 < await redis.ttl(keys.tombstone("r1")) <= 7200 + 300
    await redis.delete(keys.request("r1"))
    again = await ledger.record(request, actor="attacker")
    assert (again.created, again.state, again.revision) == (False, S.EXECUTED, 0)
    assert await ledger.get("r1") is None


async def test_after_retention_a_replayed_approval_is_too_old_to_verify() -> None:
    """With retention >= approval_max_age (config check), a message outliving its tombstone
    carries an approval the writer refuses as stale."""
    retention_s = 3600
    verifier = ApprovalVerifier([SIGNER.public_key], max_age_s=retention_s)
    request = SIGNER.approve(tweet(), approver="mod")
    assert request.approval is not None
    assert verifier.check(request, now=request.approval.approved_at).ok
    later = request.approval.approved_at + timedelta(seconds=retention_s + 1)
    assert verifier.check(request, now=later).reason is ApprovalFailure.STALE


def test_the_lua_guards_use_the_key_prefixes_of_keys_py() -> None:
    """Lua builds the guard keys itself; its prefixes must be the ones keys.py documents."""
    guards = lua_source("ledger_guards")
    assert f"'{keys.TOMBSTONE_PREFIX}'" in guards
    assert f"'{keys.SPENT_PREFIX}'" in guards
    assert f"'{keys.TOMBSTONE_PREFIX}' .. A[1]" in lua_source("record_core")
