"""Attacks on the once-only guards that the replay tests do not try, on a real Redis.

The guard keys (tombstone, spent nonce) must live at least as long as any approval they guard
could still verify; otherwise a captured approved message (from a Redis dump or backup) pushed
again by someone who can only RPUSH is executed a second time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest, utcnow
from twitstack.writes.scripts import lua_source
from twitstack.writes.signing import (
    MAX_CLOCK_SKEW,
    ApprovalSigner,
    ApprovalVerifier,
    generate_private_key,
)

S = ModerationStatus
pytestmark = pytest.mark.anyio
SIGNER = ApprovalSigner(generate_private_key())
RETENTION_S = 3600
# What `config check` allows at the limit: ledger_retention_s == approval_max_age_s.
VERIFIER = ApprovalVerifier([SIGNER.public_key], max_age_s=RETENTION_S)


async def executed_with_a_clock_ahead(ledger: RequestLedger) -> WriteRequest:
    """r1 approved by a moderation host whose clock runs ahead (within the accepted skew),
    sent at once and executed; the approved request (what a dump of the queue holds)."""
    request = WriteRequest(
        action=WriteAction.DM,
        payload={"recipient_id": "42", "text": "once only"},
        id="r1",
        author="bot",
    )
    await ledger.record(request, actor="bot")
    stored = await ledger.read("r1")
    assert stored is not None
    ahead = utcnow() + MAX_CLOCK_SKEW - timedelta(seconds=10)
    approval = SIGNER.sign(stored.record.request, approver="mod", approved_at=ahead)
    assert (await ledger.approve("r1", approval, expected_revision=1, actor="mod")).ok
    assert (await ledger.mark_sending("r1", actor="w")).ok
    done = await ledger.transition(
        "r1", S.EXECUTED, from_states=[S.SENDING], actor="w", reason="ok", result={"dm": "1"}
    )
    assert done.ok
    return replace(stored.record.request, moderation=S.APPROVED, approval=approval)


async def test_the_tombstone_outlives_an_approval_stamped_ahead_by_the_allowed_skew(
    redis: Redis,
) -> None:
    """The moderation clock ahead by < MAX_CLOCK_SKEW: the approval verifies until
    approved_at + max_age (writer time), so the tombstone and spent nonce must live that long."""
    ledger = RequestLedger(redis, retention_s=RETENTION_S)
    before = utcnow()
    sent = await executed_with_a_clock_ahead(ledger)
    assert sent.approval is not None
    assert sent.approval.nonce is not None
    verifies_until = sent.approval.approved_at + timedelta(seconds=RETENTION_S)
    # Just before that instant a re-pushed copy still carries a valid approval...
    assert VERIFIER.check(sent, now=verifies_until - timedelta(seconds=1)).ok
    # ...so neither guard may have lapsed by then.
    tombstone_ttl = await redis.ttl(keys.tombstone("r1"))
    spent_ttl = await redis.ttl(keys.spent_approval(sent.approval.nonce))
    for ttl in (tombstone_ttl, spent_ttl):
        assert ttl > 0
        assert before + timedelta(seconds=ttl) >= verifies_until


async def test_a_revoked_nonce_outlives_an_approval_stamped_ahead(redis: Redis) -> None:
    """Rejected after approval (nonce revoked): the revocation lives as long as it could verify."""
    ledger = RequestLedger(redis, retention_s=RETENTION_S)
    request = WriteRequest(
        action=WriteAction.TWEET, payload={"text": "withdrawn"}, id="r2", author="bot"
    )
    await ledger.record(request, actor="bot")
    stored = await ledger.read("r2")
    assert stored is not None
    ahead = utcnow() + MAX_CLOCK_SKEW - timedelta(seconds=10)
    before = utcnow()
    approval = SIGNER.sign(stored.record.request, approver="mod", approved_at=ahead)
    assert (await ledger.approve("r2", approval, expected_revision=1, actor="mod")).ok
    rejected = await ledger.transition(
        "r2", S.REJECTED, from_states=[S.APPROVED], actor="mod", reason="withdrawn"
    )
    assert rejected.ok
    assert approval.nonce is not None
    verifies_until = approval.approved_at + timedelta(seconds=RETENTION_S)
    for key in (keys.tombstone("r2"), keys.spent_approval(approval.nonce)):
        ttl = await redis.ttl(key)
        assert ttl > 0
        assert before + timedelta(seconds=ttl) >= verifies_until, key


def test_the_guard_slack_in_lua_is_the_skew_verifiers_accept() -> None:
    """lua/ledger_guards.lua cannot import signing.py: its constant must match by hand."""
    slack = int(MAX_CLOCK_SKEW.total_seconds())
    assert f"local LEDGER_GUARD_SLACK_S = {slack}\n" in lua_source("ledger_guards")
