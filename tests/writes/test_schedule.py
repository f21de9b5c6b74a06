"""The not_before schedule: due approved requests are promoted onto write_queue atomically."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest
from redis.asyncio import Redis

from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.models import WriteAction, WriteRequest, utcnow
from twitstack.writes.schedule import WriteSchedule
from twitstack.writes.wire import decode_write_request

pytestmark = pytest.mark.anyio


def approved(request_id: str, delay_s: float) -> WriteRequest:
    """An approved tweet due `delay_s` from now."""
    return WriteRequest(
        action=WriteAction.TWEET,
        payload={"text": request_id},
        id=request_id,
        moderation=S.APPROVED,
        not_before=utcnow() + timedelta(seconds=delay_s),
    )


async def test_promotes_only_due_requests(redis: Redis) -> None:
    """promote_due pushes due, still-approved requests, and leaves later ones."""
    ledger, schedule = RequestLedger(redis), WriteSchedule(redis)
    await ledger.record(approved("soon", 3600), actor="w")
    await ledger.record(approved("later", 7200), actor="w")
    assert await schedule.size() == 2
    now = utcnow() + timedelta(seconds=3601)
    assert await schedule.promote_due(now=now) == 1
    (message,) = await redis.lrange(keys.WRITE_QUEUE, 0, -1)
    assert decode_write_request(message).id == "soon"
    assert await schedule.size() == 1
    next_due = await schedule.next_due()
    assert next_due is not None
    assert next_due > now


async def test_rejected_requests_are_not_promoted(redis: Redis) -> None:
    """A request that left approved while waiting is dropped from the schedule, not pushed."""
    ledger, schedule = RequestLedger(redis), WriteSchedule(redis)
    await ledger.record(approved("r", 3600), actor="w")
    await schedule.add("r", utcnow())  # stale entry racing a state change
    await redis.hset(keys.request("r"), "state", "rejected")
    assert await schedule.promote_due() == 0
    assert await schedule.size() == 0
    assert await redis.llen(keys.WRITE_QUEUE) == 0


async def test_rate_limited_retry_waits_in_the_schedule(redis: Redis) -> None:
    """retry_later with a future not_before schedules; once due, the message is queued."""
    ledger, schedule = RequestLedger(redis), WriteSchedule(redis)
    await ledger.record(approved("r", -1), actor="w")
    await ledger.mark_sending("r", actor="w")
    reset = utcnow() + timedelta(seconds=0.3)
    assert (await ledger.retry_later("r", not_before=reset, actor="w", reason="429")).ok
    assert await schedule.due_at("r") is not None
    assert await schedule.promote_due() == 0
    with anyio.fail_after(5):
        for _ in range(100):  # due in 0.3 s of wall-clock time
            if await schedule.promote_due():
                break
            await anyio.sleep(0.02)
    assert await redis.llen(keys.WRITE_QUEUE) == 1


async def test_concurrent_promoters_push_each_request_once(redis: Redis) -> None:
    """Several replicas promoting at once never push the same request twice."""
    ledger, schedule = RequestLedger(redis), WriteSchedule(redis)
    for index in range(50):
        await ledger.record(approved(f"r{index}", 3600), actor="w")
    now = utcnow() + timedelta(hours=2)
    counts: list[int] = []

    async def promote() -> None:
        counts.append(await schedule.promote_due(now=now, limit=7))

    with anyio.fail_after(5):
        for _ in range(10):
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(promote)
    assert sum(counts) == 50
    assert await redis.llen(keys.WRITE_QUEUE) == 50
