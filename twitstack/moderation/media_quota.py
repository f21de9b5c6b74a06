"""Each user's daily media upload budget, counted in Redis per UTC day.

The free-space floor keeps the disk alive; this keeps one author (or one leaked API token)
from using all of it: past `[media] max_upload_mb_per_user_day` a user's uploads are refused
with 429 until the next UTC day. Bytes are counted after a file is stored, whether or not it
was new to the store, so one upload may pass the budget by at most its own size.
"""

from __future__ import annotations

from redis.asyncio import Redis

from twitstack.writes.media import MB

KEY_PREFIX = "writes:media:quota:"
DAY_S = 86_400


def quota_key(user_id: int, now: float) -> str:
    """The counter of `user_id`'s bytes uploaded on the UTC day of `now`."""
    return f"{KEY_PREFIX}{user_id}:{int(now // DAY_S)}"


async def used_today(redis: Redis, user_id: int, now: float) -> int:
    """Bytes `user_id` uploaded today (0 when nothing, or the counter is not a number)."""
    raw = await redis.get(quota_key(user_id, now))
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0  # anyone with Redis access can write it: junk counts as nothing


def over_budget_message(limit_bytes: int) -> str:
    return (
        f"daily upload budget of {limit_bytes // MB} MB used up "
        "([media] max_upload_mb_per_user_day); try again tomorrow (UTC)"
    )


async def charge(redis: Redis, user_id: int, size: int, now: float) -> None:
    """Add `size` bytes to today's counter (kept two days, then it expires)."""
    key = quota_key(user_id, now)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incrby(key, size)
        pipe.expire(key, 2 * DAY_S)
        await pipe.execute()
