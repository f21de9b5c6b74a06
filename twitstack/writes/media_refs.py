"""Which stored files a live request may still need, so retention never deletes them.

A request that has not reached a final state (pending, approved, scheduled, sending, unknown,
needs_review) may still be sent, and the writer reads its files from the store at send time;
so may a message waiting in `write_queue` (or held by a writer that is reading it). Their
hashes are collected from the ledger's state indexes, a page at a time, and from those lists.

The raw stored text is searched for anything shaped like a SHA-256 rather than parsed: a
record that no longer parses (a newer writer's field, a hand edit) must keep its files too,
and keeping a file that only looks referenced costs nothing but disk.
"""

from __future__ import annotations

import re
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from twitstack.writes import keys, ledger_index
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.states import TERMINAL_STATES

# Scanned in the direction requests usually move (review -> pending -> approved -> sending), so
# a request that moves on during the scan is met again in a later index rather than missed.
_LIVE_ORDER = (S.NEEDS_REVIEW, S.UNKNOWN, S.PENDING, S.APPROVED, S.SENDING)
_PAGE = ledger_index.MAX_PAGE_SIZE
_HASH = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
_PROCESSING_MATCH = keys.processing_list("*")


class IncompleteScan(Exception):
    """A scan stopped before its end: pruning now could delete a file still needed."""


def hashes_in(raw: Any) -> set[str]:
    """Every 64-hex-digit token in a stored value (bytes or text)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "replace")
    if not isinstance(raw, bytes):
        return set()
    return {found.decode("ascii") for found in _HASH.findall(raw)}


async def referenced_media(redis: Redis, *, max_rounds: int = 100_000) -> set[str]:
    """Hashes named by every request not in a final state, and by queued messages.

    Bounded: pages of `MAX_PAGE_SIZE` ids, at most `max_rounds` pages in all; past that it
    raises IncompleteScan rather than answer with a partial set.
    """
    assert set(_LIVE_ORDER) | TERMINAL_STATES == set(S), "a state is neither live nor final"
    found: set[str] = set()
    rounds = 0

    def tick() -> None:
        nonlocal rounds
        rounds += 1
        if rounds > max_rounds:
            raise IncompleteScan(f"more than {max_rounds} pages of live requests and messages")

    for state in _LIVE_ORDER:
        cursor: str | None = None
        while True:
            tick()
            page = await ledger_index.page_ids(
                redis, state, limit=_PAGE, cursor=cursor, newest_first=False
            )
            if page.ids:
                async with redis.pipeline(transaction=False) as pipe:
                    for request_id in page.ids:
                        pipe.hget(keys.request(request_id), "request")
                    # A key of the wrong type answers WRONGTYPE for that id only.
                    rows: list[Any] = await pipe.execute(raise_on_error=False)
                for row in rows:
                    found |= hashes_in(row)
            cursor = page.next_cursor
            if cursor is None:
                break
    lists = [keys.WRITE_QUEUE]
    async for name in redis.scan_iter(match=_PROCESSING_MATCH, count=_PAGE):
        tick()
        lists.append(name.decode() if isinstance(name, bytes) else str(name))
    for name in lists:
        start = 0
        while True:
            tick()
            try:
                items = await redis.lrange(name, start, start + _PAGE - 1)
            except ResponseError as exc:  # a key of another type holds no messages
                if not str(exc).startswith("WRONGTYPE"):
                    raise
                break
            for item in items:
                found |= hashes_in(item)
            if len(items) < _PAGE:
                break
            start += len(items)
    return found
