"""The not_before schedule: approved requests waiting for their time, promoted when due."""

from __future__ import annotations

from datetime import datetime

from redis.asyncio import Redis

from twitstack.writes import keys, scripts
from twitstack.writes.ledger_types import epoch_ms, from_epoch_ms
from twitstack.writes.models import utcnow


class WriteSchedule:
    """A sorted set of request ids scored by due time (ms), shared by all writer replicas.

    `RequestLedger.record`, `approve` and `retry_later` add to it; a writer calls `promote_due`
    every `schedule_poll_s`. Promotion pushes the ledger's stored message of each due request
    that is still approved onto `write_queue`, in one atomic step, so no replica can lose or
    double-promote one.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._promote = scripts.register(redis, "promote")

    async def add(self, request_id: str, due: datetime) -> None:
        """Schedule `request_id` for `due` (an existing entry moves to the new time)."""
        await self._redis.zadd(keys.SCHEDULE, {request_id: epoch_ms(due)})

    async def remove(self, request_id: str) -> bool:
        """Unschedule; True if it was scheduled."""
        return bool(await self._redis.zrem(keys.SCHEDULE, request_id))

    async def promote_due(self, *, now: datetime | None = None, limit: int = 100) -> int:
        """Push up to `limit` due, still-approved requests onto write_queue; how many were."""
        moment = now or utcnow()
        pushed = await self._promote(
            keys=[keys.SCHEDULE, keys.WRITE_QUEUE],
            args=[epoch_ms(moment), limit, keys.REQUEST_PREFIX],
        )
        return int(pushed)

    async def due_at(self, request_id: str) -> datetime | None:
        """When `request_id` is due, or None if it is not scheduled."""
        score = await self._redis.zscore(keys.SCHEDULE, request_id)
        return None if score is None else from_epoch_ms(score)

    async def next_due(self) -> datetime | None:
        """The earliest due time in the schedule (to sleep until), or None if empty."""
        first = await self._redis.zrangebyscore(
            keys.SCHEDULE, "-inf", "+inf", start=0, num=1, withscores=True
        )
        return from_epoch_ms(float(first[0][1])) if first else None

    async def size(self) -> int:
        """How many requests are waiting."""
        return int(await self._redis.zcard(keys.SCHEDULE))
