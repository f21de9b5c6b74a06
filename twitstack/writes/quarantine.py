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
from redis.exceptions import RedisError, ResponseError

from twitstack.core.logging import get_logger
from twitstack.core.redis_access import is_permission_error
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


# Error codes Redis answers for a while, whatever the data: a retry later may well succeed.
PASSING_CODES = (
    "BUSY", "CLUSTERDOWN", "LOADING", "MASTERDOWN", "MISCONF", "NOREPLICAS", "OOM", "READONLY",
    "TRYAGAIN",
)  # fmt: skip


def is_data_error(exc: BaseException) -> bool:
    """Whether Redis refused a command, or stopped a script, for the data one item holds
    (WRONGTYPE, a count that is none, a Lua runtime error): the same on every retry, unlike an
    outage, a read-only replica, OOM or an ACL denial (NOPERM is never data)."""
    if type(exc) is not ResponseError or is_permission_error(exc):
        return False
    return not str(exc).startswith(PASSING_CODES)


def is_wrong_type(exc: BaseException) -> bool:
    """Whether Redis refused a command for the type of the key it named (junk written by
    hand: data to pass over), not for the user's ACL or an outage. Also when a pipeline
    annotated the reply ("Command # 1 (...) of pipeline caused error: WRONGTYPE ...")."""
    return (
        type(exc) is ResponseError
        and not is_permission_error(exc)
        and "WRONGTYPE Operation against a key" in str(exc)
    )


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

    async def put_failure(self, source: str, ref: str, exc: Exception) -> bool:
        """Quarantine an item a sweep failed on, so the sweep goes on with the next one.

        Raises `exc` again when it is no item's fault (an outage, an ACL refusal): the whole
        sweep must wait for Redis then, and NOPERM is counted and alerted on by its caller.
        """
        reason = failure_reason(exc)
        if reason is None:
            raise exc
        # A bug, not junk: its traceback once per item and process (a sweep meets it again).
        if reason == "sweep_error" and f"{source}:{ref}" not in self._seen:
            log.error("quarantine.sweep_failed", source=source, ref=ref, exc_info=exc)
        return await self.put(source, ref, reason, f"{type(exc).__name__}: {exc}")


def failure_reason(exc: BaseException) -> str | None:
    """The quarantine reason for a sweep that failed on one item with `exc`, or None when the
    failure is no item's fault: `script_error` (a Lua script stopped by the item's data),
    `redis_data_error` (a command refused it, e.g. a key of the wrong type), `sweep_error` (a
    bug, or junk the code did not expect)."""
    if isinstance(exc, UnreadableError):
        return exc.reason
    if isinstance(exc, RedisError | OSError):
        if not is_data_error(exc):
            return None
        return "script_error" if "@user_script:" in str(exc) else "redis_data_error"
    return "sweep_error"
