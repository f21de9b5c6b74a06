"""Counting arrivals on a Redis list that grows at one end and shrinks anywhere.

`write_queue:dead` grows at its tail (RPUSH) and the quarantine list at its head (LPUSH),
while operators remove entries anywhere (retry, purge, a cap). Comparing lengths between two
looks misses arrivals that coincide with removals, so the notifier remembers the newest entry
it saw (a fingerprint and its time) and counts what lies beyond it; if that entry was removed
meanwhile, everything newer than its time is new.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

_CHUNK = 200
MAX_SCAN = 10_000  # entries looked at per list and look; more arrivals are reported as this many


@dataclass(frozen=True, slots=True)
class Mark:
    """The newest entry seen on a list: its fingerprint and time ('' and 0 when it was empty)."""

    fingerprint: str = ""
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"fp": self.fingerprint, "at": self.at}

    @classmethod
    def from_dict(cls, data: Any) -> Mark | None:
        if not isinstance(data, dict):
            return None
        fingerprint, at = data.get("fp"), data.get("at")
        if not isinstance(fingerprint, str) or not isinstance(at, int | float):
            return None
        return cls(fingerprint, float(at))


def fingerprint(raw: bytes | str) -> str:
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
    return hashlib.sha256(data).hexdigest()[:32]


def entry_time(raw: bytes | str) -> float | None:
    """When an entry was written: `time` (ISO, write_queue:dead) or `at` (epoch, quarantine)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    at, text = data.get("at"), data.get("time")
    if isinstance(at, int | float) and not isinstance(at, bool):
        return float(at)
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            return None
    return None


async def count_arrivals(
    redis: Redis, key: str, last: Mark | None, *, newest_at_tail: bool
) -> tuple[int, Mark]:
    """Entries of `key` that arrived after `last` (0 when `last` is None), and the new mark.

    Walks from the newest end and stops at the remembered entry, or at the first one older
    than it. An entry without a readable time (junk written by hand) counts as an arrival
    unless the walk stopped before it.
    """
    newest: Mark | None = None
    arrived = 0
    for start in range(0, MAX_SCAN, _CHUNK):
        if newest_at_tail:
            rows = await redis.lrange(key, -start - _CHUNK, -start - 1)
            rows = list(reversed(rows))
        else:
            rows = await redis.lrange(key, start, start + _CHUNK - 1)
        for raw in rows:
            mark = Mark(fingerprint(raw), entry_time(raw) or 0.0)
            if newest is None:
                newest = mark
                if last is None:
                    return 0, newest
            assert last is not None
            at = entry_time(raw)
            if mark.fingerprint == last.fingerprint or (at is not None and at < last.at):
                return arrived, newest
            arrived += 1
        if len(rows) < _CHUNK:
            break
    return arrived, newest or Mark()
