"""Adversary: junk in the consumer registry must not stop recovery, depths or `queue stats`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis.asyncio import Redis

from twitstack.writes import keys, ledger_index
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest, utcnow
from twitstack.writes.queue import ReliableQueue

pytestmark = pytest.mark.anyio


async def junk_registry(redis: Redis) -> None:
    """A dead consumer c1 holding two messages, beside two junk registry members."""
    await redis.rpush(keys.processing_list("c1"), b"m2", b"m1")  # LMOVE LEFT/LEFT order
    await redis.sadd(keys.CONSUMERS, "c1", b"\xff\xfe junk", "a-wrong-type")
    await redis.set(keys.processing_list("a-wrong-type"), "not a list")


async def test_recovery_goes_past_junk_consumer_members(redis: Redis) -> None:
    """A non-UTF-8 member and one whose processing key is no list do not stop c1's recovery."""
    await junk_registry(redis)
    live = ReliableQueue(redis, "z-live")
    report = await live.recover_dead()
    assert report.consumers == ["c1"]
    assert sorted(await redis.lrange(keys.WRITE_QUEUE, 0, -1)) == [b"m1", b"m2"]
    depths = await live.depths()
    assert (depths.queued, depths.processing) == (2, 0)


async def test_state_index_pages_pass_over_junk_members(redis: Redis) -> None:
    """Non-UTF-8 members and an infinite score neither crash a page nor hide the real ids."""
    ledger = RequestLedger(redis)
    real = [WriteRequest(WriteAction.TWEET, {"text": f"t{i}"}) for i in range(3)]
    for request in real:
        await ledger.record(request, actor="test")
    index = keys.state_index(ModerationStatus.PENDING)
    await redis.zadd(index, {b"\xff\xfe": 5, b"\xc3": float("inf"), "inf-but-text": float("-inf")})
    wanted = {request.id for request in real}
    assert wanted <= set(await ledger_index.list_ids(redis, ModerationStatus.PENDING, limit=10))
    seen: set[str] = set()
    page = await ledger_index.page_ids(redis, ModerationStatus.PENDING, limit=2)
    for _ in range(10):
        seen.update(page.ids)
        if page.next_cursor is None:
            break
        page = await ledger_index.page_ids(
            redis, ModerationStatus.PENDING, limit=2, cursor=page.next_cursor
        )
    assert wanted | {"inf-but-text"} == seen


async def test_expiry_sweep_drops_a_junk_member(redis: Redis) -> None:
    """A non-UTF-8 member due in the expiry index is removed, the real request expires."""
    ledger = RequestLedger(redis)
    request = WriteRequest(
        WriteAction.TWEET, {"text": "soon gone"}, expires_at=utcnow() + timedelta(seconds=1)
    )
    await ledger.record(request, actor="test")
    await redis.zadd(keys.EXPIRY, {b"\xff\xfe": 0})
    assert await ledger.expire_due(now=utcnow() + timedelta(seconds=5)) == 1
    assert await redis.zrange(keys.EXPIRY, 0, -1) == []
