"""Adversary: junk in the consumer registry must not stop recovery, depths or `queue stats`."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from twitstack.writes import keys
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
