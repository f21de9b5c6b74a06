"""Reliable consumption: take/ack, recovery after a consumer dies, dead letters, poison pills."""

from __future__ import annotations

import json

import anyio
import pytest
from redis.asyncio import Redis

from twitstack.writes import keys
from twitstack.writes.queue import ReliableQueue, parse_dead_letter

pytestmark = pytest.mark.anyio


async def push(redis: Redis, *messages: bytes) -> None:
    """Producers RPUSH; consumers take from the left."""
    await redis.rpush(keys.WRITE_QUEUE, *messages)


async def test_take_moves_into_processing_and_ack_removes(redis: Redis) -> None:
    """A taken message sits in the consumer's processing list until acked."""
    queue = ReliableQueue(redis, "c1")
    await queue.heartbeat()
    await push(redis, b"m1", b"m2")
    with anyio.fail_after(5):
        assert await queue.take(1) == b"m1"
    assert await queue.in_flight() == [b"m1"]
    assert await redis.llen(keys.WRITE_QUEUE) == 1
    assert await queue.ack(b"m1")
    assert await queue.in_flight() == []
    assert not await queue.ack(b"m1")


async def test_take_times_out_on_an_empty_queue(redis: Redis) -> None:
    """With nothing queued, take returns None after its timeout."""
    with anyio.fail_after(5):
        assert await ReliableQueue(redis, "c1").take(0.1) is None


async def test_dead_consumers_messages_are_recovered_by_a_live_one(redis: Redis) -> None:
    """After c1's heartbeat lapses, c2 puts c1's in-flight messages back at the head, in order."""
    dead = ReliableQueue(redis, "c1", heartbeat_ttl_s=0.2)
    live = ReliableQueue(redis, "c2")
    await dead.heartbeat()
    await push(redis, b"a", b"b", b"c")
    with anyio.fail_after(5):
        await dead.take(1)
        await dead.take(1)
    # Still alive: nothing is taken from it.
    assert (await live.recover_dead()).requeued == 0
    with anyio.fail_after(5):
        for _ in range(100):  # the heartbeat's TTL lapses in Redis's own time
            if not await redis.exists(keys.heartbeat("c1")):
                break
            await anyio.sleep(0.02)
    report = await live.recover_dead()
    assert report.requeued == 2
    assert report.consumers == ["c1"]
    assert await redis.lrange(keys.WRITE_QUEUE, 0, -1) == [b"a", b"b", b"c"]
    assert await dead.in_flight() == []
    assert b"c1" not in await redis.smembers(keys.CONSUMERS)


async def test_restarting_consumer_recovers_its_own_list(redis: Redis) -> None:
    """recover_own() at start-up requeues what the same id held, heartbeat or not."""
    before = ReliableQueue(redis, "host-1")
    await before.heartbeat()
    await push(redis, b"x")
    with anyio.fail_after(5):
        await before.take(1)
    after = ReliableQueue(redis, "host-1")
    assert (await after.recover_own()).requeued == 1
    assert await redis.lrange(keys.WRITE_QUEUE, 0, -1) == [b"x"]


async def test_message_crashing_three_consumers_is_dead_lettered(redis: Redis) -> None:
    """The third crash with the same message in flight sends it to write_queue:dead."""
    await push(redis, b"poison")
    for crash in range(1, 4):
        victim = ReliableQueue(redis, f"victim-{crash}", heartbeat_ttl_s=0.05)
        with anyio.fail_after(5):
            assert await victim.take(1) == b"poison"
        # kill -9: the heartbeat is never refreshed; the restarted process recovers its list.
        report = await ReliableQueue(redis, f"victim-{crash}").recover_own()
        if crash < 3:
            assert report.requeued == 1
            assert report.dead_lettered == 0
        else:
            assert report.requeued == 0
            assert report.dead_lettered == 1
    assert await redis.llen(keys.WRITE_QUEUE) == 0
    (entry,) = await redis.lrange(keys.DEAD_LETTER, 0, -1)
    record = parse_dead_letter(entry)
    assert record["reason"] == "crashed_consumer"
    assert record["raw"] == "poison"
    assert record["consumer"] == "victim-3"
    assert not await redis.hlen(keys.CRASH_COUNTS)


async def test_ack_resets_the_crash_count(redis: Redis) -> None:
    """A message that survived one crash and was then acked starts from zero next time."""
    await push(redis, b"m")
    first = ReliableQueue(redis, "a")
    with anyio.fail_after(5):
        await first.take(1)
    await first.recover_own()
    assert await redis.hlen(keys.CRASH_COUNTS) == 1
    with anyio.fail_after(5):
        await first.take(1)
    await first.ack(b"m")
    assert await redis.hlen(keys.CRASH_COUNTS) == 0


async def test_dead_letter_records_a_machine_readable_reason(redis: Redis) -> None:
    """dead_letter() moves the message with {reason, detail, raw, consumer, time}."""
    queue = ReliableQueue(redis, "c1")
    await push(redis, b"\xffnot utf8", b'{"action":"x"}')
    with anyio.fail_after(5):
        bad_bytes = await queue.take(1)
        bad_json = await queue.take(1)
    assert bad_bytes is not None
    assert bad_json is not None
    assert await queue.dead_letter(bad_bytes, reason="invalid_utf8", detail="byte 0")
    assert await queue.dead_letter(bad_json, reason="invalid_field", detail="action: ...")
    assert not await queue.dead_letter(bad_json, reason="again", detail="no longer held")
    entries = [json.loads(e) for e in await redis.lrange(keys.DEAD_LETTER, 0, -1)]
    assert [e["reason"] for e in entries] == ["invalid_utf8", "invalid_field"]
    assert entries[0]["raw"] is None
    assert entries[0]["raw_b64"] == "/25vdCB1dGY4"
    assert entries[1]["raw"] == '{"action":"x"}'
    assert entries[1]["consumer"] == "c1"
    assert entries[1]["time"].endswith("Z")
    assert entries[1]["detail"] == "action: ..."
    assert await queue.in_flight() == []


async def test_release_gives_a_message_back_once(redis: Redis) -> None:
    """release() puts an in-flight message back at the head exactly once."""
    queue = ReliableQueue(redis, "c1")
    await push(redis, b"first", b"second")
    with anyio.fail_after(5):
        await queue.take(1)
    assert await queue.release(b"first")
    assert not await queue.release(b"first")
    assert await redis.lrange(keys.WRITE_QUEUE, 0, -1) == [b"first", b"second"]


async def test_depths_and_leave(redis: Redis) -> None:
    """depths() sums processing lists; leave() refuses while work is held."""
    queue = ReliableQueue(redis, "c1")
    await queue.heartbeat()
    await push(redis, b"a", b"b")
    with anyio.fail_after(5):
        await queue.take(1)
    depths = await queue.depths()
    assert (depths.queued, depths.processing, depths.dead, depths.scheduled) == (1, 1, 0, 0)
    assert not await queue.leave()
    await queue.ack(b"a")
    assert await queue.leave()
    assert not await redis.exists(keys.heartbeat("c1"))
