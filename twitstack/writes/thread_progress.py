"""A thread's progress in its ledger record: which parts X has (their ids), which is in flight.

Kept in the request's own hash, so it lives and lapses with the record and every replica and
the moderation service read it from one place. Both moves are compare-and-set Lua calls
(`lua/thread_part.lua`): a part is marked in flight only in `sending` at the writer's own
attempt and only when every earlier part is posted; an id is recorded only for the next part.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from twitstack.writes import keys, scripts
from twitstack.writes.ledger_types import as_text, epoch_ms
from twitstack.writes.models import format_time, utcnow
from twitstack.writes.validation import is_snowflake_id

FIELDS = ("thread_posted", "thread_inflight", "thread_inflight_ms")


class PartStatus(enum.StrEnum):
    """How a progress move ended."""

    OK = "ok"
    ALREADY = "already"  # that id was recorded for that part before
    NOT_FOUND = "not_found"
    STATE_MISMATCH = "state_mismatch"  # the request left `sending` (or `unknown`)
    ATTEMPT_MISMATCH = "attempt_mismatch"  # another attempt owns the request now
    PART_MISMATCH = "part_mismatch"  # not the next part
    CONFLICT = "conflict"  # another id is recorded for that part


@dataclass(frozen=True, slots=True)
class ThreadProgress:
    """Posted part ids in order, and the part marked in flight (0-based) since when (epoch s)."""

    posted: tuple[str, ...]
    inflight: int | None = None
    inflight_since: float | None = None

    @property
    def next_part(self) -> int:
        """The 0-based index of the first part X does not have yet."""
        return len(self.posted)

    def to_result(self, parts: int) -> dict[str, Any]:
        """The ledger `result` of a thread: first id, every posted id, how many of how many."""
        return {
            "tweet_id": self.posted[0] if self.posted else "",
            "thread_ids": list(self.posted),
            "parts_posted": len(self.posted),
            "parts": parts,
        }


def parse_progress(fields: Mapping[bytes | str, bytes | str | None]) -> ThreadProgress:
    """Progress from the hash fields FIELDS; junk (anyone may HSET) reads as no progress."""
    text = {as_text(k): as_text(v) for k, v in fields.items() if v is not None}
    posted = tuple(i for i in text.get("thread_posted", "").split(",") if is_snowflake_id(i))
    inflight_raw, since_raw = text.get("thread_inflight"), text.get("thread_inflight_ms")
    inflight = int(inflight_raw) if inflight_raw and inflight_raw.isdigit() else None
    since = int(since_raw) / 1000 if since_raw and since_raw.isdigit() else None
    return ThreadProgress(posted, inflight, since)


class ThreadLedger:
    """Reads and moves the thread progress of ledger records."""

    def __init__(self, redis: Redis, *, events_maxlen: int) -> None:
        self._redis = redis
        self._events_maxlen = events_maxlen
        self._script = scripts.register(redis, "thread_part")

    async def progress(self, request_id: str) -> ThreadProgress:
        """The thread's progress as the ledger holds it now."""
        values: Sequence[Any] = await self._redis.hmget(keys.request(request_id), list(FIELDS))
        return parse_progress(dict(zip(FIELDS, values, strict=True)))

    async def begin_part(
        self, request_id: str, index: int, *, attempt: int, actor: str
    ) -> PartStatus:
        """Commit that part `index` is about to be sent (before its first byte goes to X)."""
        status, _ = await self._run("begin", request_id, index, str(attempt), "", actor)
        return status

    async def part_posted(
        self, request_id: str, index: int, tweet_id: str, *, actor: str
    ) -> tuple[PartStatus, str]:
        """Record X's id for part `index`; with CONFLICT, the id recorded there instead."""
        if not is_snowflake_id(tweet_id):
            raise ValueError(f"expected an X id of 1-19 digits, found {tweet_id!r}")
        return await self._run("posted", request_id, index, "", tweet_id, actor)

    async def _run(
        self,
        op: str,
        request_id: str,
        index: int,
        attempt: str,
        tweet_id: str,
        actor: str,
    ) -> tuple[PartStatus, str]:
        now = utcnow()
        reply = await self._script(
            keys=[keys.request(request_id), keys.EVENTS],
            args=[op, request_id, index, attempt, tweet_id, format_time(now),
                  epoch_ms(now), actor, self._events_maxlen],
        )  # fmt: skip
        return PartStatus(as_text(reply[0])), as_text(reply[1])
