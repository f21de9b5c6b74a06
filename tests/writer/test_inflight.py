"""Orphaned messages in our own processing list are handed back, held ones never."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from twitstack.writer.inflight import InFlight
from twitstack.writes import keys
from twitstack.writes.queue import ReliableQueue

pytestmark = pytest.mark.anyio


async def test_unheld_message_is_released_on_the_second_pass(redis: Redis) -> None:
    """A taken message no worker holds goes back to the queue after two passes; a held one stays."""
    queue = ReliableQueue(redis, "me")
    await redis.rpush(keys.WRITE_QUEUE, b"held", b"orphan")
    held = InFlight()
    taken = await queue.take(0.1)
    assert taken == b"held"
    held.hold(taken)
    assert await queue.take(0.1) == b"orphan"  # as if the reply to BLMOVE had been lost
    assert await held.reclaim(queue) == 0  # first sighting: only a suspect
    assert await held.reclaim(queue) == 1
    assert await redis.lrange(keys.WRITE_QUEUE, 0, -1) == [b"orphan"]
    assert await queue.in_flight() == [b"held"]
    held.drop(b"held")
    assert len(held) == 0


async def test_message_taken_between_passes_is_not_released(redis: Redis) -> None:
    """A message seen unheld once, then held by a worker, is left alone."""
    queue = ReliableQueue(redis, "me")
    await redis.rpush(keys.WRITE_QUEUE, b"slow")
    held = InFlight()
    raw = await queue.take(0.1)
    assert raw is not None
    assert await held.reclaim(queue) == 0
    held.hold(raw)
    assert await held.reclaim(queue) == 0
    assert await queue.in_flight() == [b"slow"]
