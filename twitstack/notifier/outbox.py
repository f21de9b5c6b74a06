"""The notifier's outbox in Redis: scheduled once, claimed with a lease, retried, dead-lettered.

Scheduling and the state it depends on (the events cursor, a count last seen) change in one
script, so a notifier killed between reading and scheduling reads the same things again and
schedules nothing twice; a claimed delivery is leased, not removed, so one killed while
sending is sent again by whoever claims it next (at least once: receivers dedupe on the
delivery id, sent with every delivery).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from twitstack.notifier.models import Delivery
from twitstack.writes import keys
from twitstack.writes.errors import UnreadableError
from twitstack.writes.ledger_types import as_text

MAX_DEAD = 10_000

# KEYS: state, scheduled, outbox, items, markers. ARGV: guard field ('' = none), expected
# value ('' = absent), new value, now (ms), then (id, delivery JSON) pairs; a pair with an
# empty JSON only adds the id to the markers set. -1: the guard moved (someone else got there
# first).
_SCHEDULE = """
if ARGV[1] ~= '' then
  local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
  if current ~= ARGV[2] then return -1 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
local added = 0
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('ZADD', KEYS[5], 'NX', ARGV[4], ARGV[i])
  elseif redis.call('ZADD', KEYS[2], 'NX', ARGV[4], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
    redis.call('ZADD', KEYS[3], ARGV[4], ARGV[i])
    added = added + 1
  end
end
return added
"""
# KEYS: outbox, items, coalesce. ARGV: now (ms), lease end (ms), limit. Returns id, JSON, id,
# JSON, ... A claimed delivery closes its coalescing slot (see `coalesce`): later events go to
# the slot's next message, never into one being sent.
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
  local slot = redis.call('HGET', KEYS[3], 'id:' .. id)
  if slot then
    redis.call('HDEL', KEYS[3], 'id:' .. id)
    if redis.call('HGET', KEYS[3], 'slot:' .. slot) == id then
      redis.call('HDEL', KEYS[3], 'slot:' .. slot)
    end
    redis.call('HSET', KEYS[3], 'claimed:' .. slot, ARGV[1])
  end
  table.insert(out, id)
  table.insert(out, redis.call('HGET', KEYS[2], id) or '')
end
return out
"""
# KEYS: dead, items, outbox. ARGV: dead entry, id, delivery JSON, now (ms).
_REVIVE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
return 1
"""


@dataclass(frozen=True, slots=True)
class Guard:
    """Schedule only if `field` of the notifier's state still holds `expected`; then set `new`."""

    field: str
    expected: str
    new: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery that gave up, as listed by `twitstack notify dead`."""

    id: str
    channel: str
    event: str
    attempts: int
    error: str
    dead_at: float
    raw: str  # the stored entry, exactly (to remove it again)
    delivery: str  # the delivery's JSON


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed delivery: its id as stored (to remove it), as text, and its JSON."""

    key: bytes | str
    id: str
    raw: str


def _lenient(value: bytes | str) -> str:
    # Anyone with Redis access can write the outbox: junk must be readable enough to report.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class NotificationOutbox:
    """Deliveries waiting to be sent, in Redis; any number of notifiers may share it."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._schedule = redis.register_script(_SCHEDULE)
        self._claim = redis.register_script(_CLAIM)
        self._revive = redis.register_script(_REVIVE)

    async def state(self, name: str) -> str | None:
        """What the notifier last noted under `name` (its cursor, a count), or None."""
        value = await self._redis.hget(keys.NOTIFY_STATE, name)
        return as_text(value) if value is not None else None

    async def set_state_if_absent(self, name: str, value: str) -> bool:
        return bool(await self._redis.hsetnx(keys.NOTIFY_STATE, name, value))

    async def forget_state(self, name: str) -> None:
        await self._redis.hdel(keys.NOTIFY_STATE, name)

    async def schedule(
        self,
        deliveries: Sequence[Delivery],
        *,
        guard: Guard | None = None,
        markers: Sequence[str] = (),
        now: float | None = None,
    ) -> int:
        """Add the deliveries not scheduled before; -1 (nothing done) if `guard` failed.

        `markers` (request ids reported as waiting) are added to the waiting set, in the
        same step.
        """
        at = _ms(time.time() if now is None else now)
        args: list[str | int] = [
            guard.field if guard else "", guard.expected if guard else "",
            guard.new if guard else "", at,
        ]  # fmt: skip
        for delivery in deliveries:
            args += [delivery.id, delivery.to_json()]
        for marker in markers:
            args += [marker, ""]
        keys_ = [keys.NOTIFY_STATE, keys.NOTIFY_SCHEDULED, keys.NOTIFY_OUTBOX, keys.NOTIFY_ITEMS,
                 keys.NOTIFY_WAITING]  # fmt: skip
        return int(await self._schedule(keys=keys_, args=args))

    async def already_scheduled(self, ids: Sequence[str], *, waiting: bool = False) -> set[str]:
        """Which of `ids` were scheduled before (`waiting`: which requests were reported)."""
        if not ids:
            return set()
        key = keys.NOTIFY_WAITING if waiting else keys.NOTIFY_SCHEDULED
        scores = await self._redis.zmscore(key, list(ids))
        return {i for i, score in zip(ids, scores, strict=True) if score is not None}

    async def forget_waiting(self, *, cursor: int, still_waiting: Callable[[list[str]],
                             Awaitable[set[str]]], count: int = 500) -> int:  # fmt: skip
        """One ZSCAN step over the reported requests, dropping those no longer waiting; the
        next cursor (0: a full pass ended)."""
        next_cursor, rows = await self._redis.zscan(keys.NOTIFY_WAITING, cursor, count=count)
        members = {_lenient(m): m for m, _score in rows if isinstance(m, bytes | str)}
        keep = await still_waiting(list(members)) if members else set()
        gone = [raw for i, raw in members.items() if i not in keep]
        if gone:
            await self._redis.zrem(keys.NOTIFY_WAITING, *gone)
        return int(next_cursor)

    async def claim(self, *, lease_s: float, limit: int) -> list[Claimed]:
        """Due deliveries, each hidden from other claimers for `lease_s`."""
        now = time.time()
        reply = await self._claim(
            keys=[keys.NOTIFY_OUTBOX, keys.NOTIFY_ITEMS, keys.NOTIFY_COALESCE],
            args=[_ms(now), _ms(now + lease_s), limit],
        )
        parts = list(reply or [])
        return [Claimed(key, _lenient(key), _lenient(raw)) for key, raw in zip(
            parts[0::2], parts[1::2], strict=True)]  # fmt: skip

    async def done(self, delivery_id: bytes | str) -> None:
        """Forget a delivery that was sent (or that cannot be read)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.NOTIFY_OUTBOX, delivery_id)
            pipe.hdel(keys.NOTIFY_ITEMS, delivery_id)
            await pipe.execute()

    async def retry_later(self, delivery: Delivery, *, due: float) -> None:
        """Store the failed attempt and make the delivery due again at `due`."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.NOTIFY_ITEMS, delivery.id, delivery.to_json())
            pipe.zadd(keys.NOTIFY_OUTBOX, {delivery.id: _ms(due)})
            await pipe.execute()

    async def dead_letter(
        self,
        delivery_id: bytes | str,
        raw: str,
        *,
        channel: str,
        event: str,
        attempts: int,
        error: str,
    ) -> None:
        """Move a delivery out of the outbox onto the dead-letter list (newest first)."""
        entry = json.dumps(
            {"id": _lenient(delivery_id), "channel": channel, "event": event, "attempts": attempts,
             "error": error, "dead_at": round(time.time(), 3), "delivery": raw},
            sort_keys=True,
        )  # fmt: skip
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(keys.NOTIFY_DEAD, entry)
            pipe.ltrim(keys.NOTIFY_DEAD, 0, MAX_DEAD - 1)
            pipe.zrem(keys.NOTIFY_OUTBOX, delivery_id)
            pipe.hdel(keys.NOTIFY_ITEMS, delivery_id)
            await pipe.execute()

    async def depth(self) -> tuple[int, int]:
        """(deliveries in the outbox, dead letters)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.NOTIFY_OUTBOX)
            pipe.llen(keys.NOTIFY_DEAD)
            outbox, dead = await pipe.execute()
        return int(outbox), int(dead)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters; entries that are not ours are shown as such, not raised."""
        rows = await self._redis.lrange(keys.NOTIFY_DEAD, 0, limit - 1)
        return [_dead_letter(as_text(row)) for row in rows]

    async def revive(self, letter: DeadLetter) -> bool:
        """Put a dead letter back in the outbox with its attempts reset; False if gone."""
        try:
            delivery = Delivery.from_json(letter.id, letter.delivery)
        except UnreadableError:
            return False
        fresh = Delivery(delivery.notification, delivery.channel)
        done = await self._revive(
            keys=[keys.NOTIFY_DEAD, keys.NOTIFY_ITEMS, keys.NOTIFY_OUTBOX],
            args=[letter.raw, fresh.id, fresh.to_json(), _ms(time.time())],
        )
        return bool(done)

    async def prune_scheduled(self, *, older_than_s: float) -> int:
        """Forget scheduled ids older than `older_than_s` (the dedupe window)."""
        cutoff = _ms(time.time() - older_than_s)
        return int(await self._redis.zremrangebyscore(keys.NOTIFY_SCHEDULED, "-inf", cutoff))


def _dead_letter(raw: str) -> DeadLetter:
    try:
        data = json.loads(raw)
        return DeadLetter(
            id=str(data["id"]), channel=str(data["channel"]), event=str(data["event"]),
            attempts=int(data["attempts"]), error=str(data["error"]),
            dead_at=float(data["dead_at"]), raw=raw, delivery=str(data["delivery"]),
        )  # fmt: skip
    except (ValueError, TypeError, KeyError, ArithmeticError, RecursionError):
        return DeadLetter("?", "?", "?", 0, "unreadable dead letter", 0.0, raw, "")
