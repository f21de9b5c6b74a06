"""Moderation's own waiting ages: pending for a moderator, approved but not being executed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from tests.writer.harness import SIGNER, tweet
from twitstack.moderation.queue_watch import oldest_approved_age_s, oldest_pending_age_s
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, utcnow
from twitstack.writes.wire import encode_write_request

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url, socket_timeout=10)
    try:
        yield redis
    finally:
        await redis.aclose()


async def test_age_counts_due_approved_requests_in_the_ledger_and_on_the_queue(
    client: Redis,
) -> None:
    ledger = RequestLedger(client)
    now = utcnow()
    hour = timedelta(hours=1)
    assert await oldest_approved_age_s(client, ledger, now) == 0  # nothing approved: 0

    # Approved an hour ago and still waiting (no writer took it).
    waiting = SIGNER.approve(tweet("waiting"), approver="mo", approved_at=now - hour)
    await ledger.record(waiting, actor="test")
    # Approved 3 hours ago for a time still an hour ahead: scheduled, not late.
    scheduled = SIGNER.approve(
        tweet("later", not_before=now + hour), approver="mo", approved_at=now - 3 * hour
    )
    assert (await ledger.record(scheduled, actor="test")).scheduled
    # Approved 5 hours ago but being sent now: a writer has it (stuck sends are reconciled).
    sending = SIGNER.approve(tweet("sending"), approver="mo", approved_at=now - 5 * hour)
    await ledger.record(sending, actor="test")
    assert (await ledger.mark_sending(sending.id, actor="test")).ok
    # Junk in the approved index and on the queue is passed over.
    await client.zadd(keys.state_index(ModerationStatus.APPROVED), {b"\xff\xfe": 1})
    await client.rpush(keys.WRITE_QUEUE, b"not json", encode_write_request(tweet("pending")))
    assert await oldest_approved_age_s(client, ledger, now) == 3600

    # A producer's signed message straight on write_queue (no ledger record until a writer
    # takes it), approved 2 hours ago.
    direct = SIGNER.approve(tweet("direct"), approver="bot", approved_at=now - 2 * hour)
    await client.rpush(keys.WRITE_QUEUE, encode_write_request(direct))
    assert await oldest_approved_age_s(client, ledger, now) == 7200

    # Two hours on, the scheduled one has been due for an hour too; the direct one is oldest.
    assert await oldest_approved_age_s(client, ledger, now + 2 * hour) == 4 * 3600


async def test_pending_age_is_the_oldest_creation_time_junk_scores_passed_over(
    client: Redis,
) -> None:
    ledger = RequestLedger(client)
    now = utcnow()
    assert await oldest_pending_age_s(client, now) == 0
    old = tweet("old", created_at=now - timedelta(hours=2))
    await ledger.record(old, actor="test")
    await ledger.record(tweet("new", created_at=now - timedelta(minutes=1)), actor="test")
    await client.zadd(keys.state_index(ModerationStatus.PENDING), {b"junk": float("-inf")})
    assert await oldest_pending_age_s(client, now) == pytest.approx(7200, abs=0.01)  # ms scores
