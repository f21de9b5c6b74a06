"""Quarantine: what a reader does with shared data it cannot read, instead of crashing on it.

Ledger records, event-stream entries and scraped items come through Redis, where anyone with
access can write anything. A reader that meets one it cannot parse calls `Quarantine.put`: the
item is recorded once in `writes:quarantine` (newest first, capped) with the reason, counted
in `twitstack_quarantined_total{source,reason}`, logged in one line, and the reader moves past
it. Nothing is deleted: the item stays where it was for an operator (docs/runbook.md).
"""

from __future__ import annotations

import json
import time

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from twitstack.core.logging import get_logger
from twitstack.writes import keys
from twitstack.writes.errors import UnreadableError

log = get_logger("twitstack.quarantine")
MAX_ENTRIES = 10_000
_MAX_SEEN = 100_000  # past this the per-process memo starts afresh (Redis still dedups)
_DETAIL_CHARS = 500
# Record the entry only if no replica recorded this item before, in one step.
_PUT = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
"""


class Quarantine:
    """Records unreadable items of one service, each once across every replica."""

    def __init__(self, redis: Redis, counter: Counter, *, service: str) -> None:
        self._redis = redis
        self._counter = counter
        self._service = service
        # Items this process already reported: sweeps meet the same item on every pass.
        self._seen: set[str] = set()

    async def put(self, source: str, ref: str, reason: str, detail: str) -> bool:
        """Quarantine one item; False if it was already quarantined (nothing done then)."""
        marker = f"{source}:{ref}"
        if marker in self._seen:
            return False
        entry = json.dumps(
            {"at": round(time.time(), 3), "service": self._service, "source": source,
             "ref": ref, "reason": reason, "detail": detail[:_DETAIL_CHARS]},
            sort_keys=True,
        )  # fmt: skip
        try:
            added = await self._redis.eval(
                _PUT, 2, keys.QUARANTINED_REFS, keys.QUARANTINE, marker, entry, MAX_ENTRIES
            )
        except (RedisError, OSError):
            added = 1  # counted and logged all the same: the reader must move on either way
        if len(self._seen) >= _MAX_SEEN:
            self._seen.clear()
        self._seen.add(marker)
        if not added:
            return False
        self._counter.labels(source=source, reason=reason).inc()
        log.warning(
            "quarantine.stored",
            service=self._service,
            source=source,
            ref=ref,
            reason=reason,
            detail=detail[:200],
        )
        return True

    async def put_error(self, error: UnreadableError) -> bool:
        """Quarantine the item an UnreadableError describes."""
        return await self.put(error.source, error.ref, error.reason, error.detail)
