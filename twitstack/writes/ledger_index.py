"""Listing requests by state: counts, offset pages and cursor pages over the state indexes.

Each state's sorted set is scored by creation time in ms; equal scores are ordered by id, so
(score, id) is a total order and a cursor made of the last item shown resumes exactly there, even
while requests move between states.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, TypeGuard

from redis.asyncio import Redis

from twitstack.writes import keys
from twitstack.writes.errors import WriteRequestError
from twitstack.writes.ledger_types import as_text
from twitstack.writes.models import ModerationStatus

MAX_PAGE_SIZE = 500
# Ids fetched per round while skipping entries that tie with the cursor's score.
_BATCH = 200
_MAX_ROUNDS = 10_000


@dataclass(frozen=True, slots=True)
class IdPage:
    """One page of request ids in display order, with cursors to the neighbouring pages."""

    ids: list[str]
    next_cursor: str | None  # continues after the last id shown
    prev_cursor: str | None  # the page before the first id shown


@dataclass(frozen=True, slots=True)
class _Cursor:
    newest_first: bool
    forward: bool  # True: after (score, id) in display order; False: before it
    score: int
    request_id: str

    def encode(self) -> str:
        data = [int(self.newest_first), int(self.forward), self.score, self.request_id]
        raw = json.dumps(data, separators=(",", ":")).encode("utf-8")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str) -> _Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            newest, forward, score, request_id = json.loads(raw)
            if not isinstance(score, int) or not isinstance(request_id, str):
                raise ValueError("bad types")
            return cls(bool(newest), bool(forward), score, request_id)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise WriteRequestError(f"expected a page cursor, found {token[:40]!r}") from None


async def count(redis: Redis, state: ModerationStatus) -> int:
    """How many requests are in `state` (O(1))."""
    return int(await redis.zcard(keys.state_index(state)))


async def counts(redis: Redis) -> dict[ModerationStatus, int]:
    """Requests per state, every state listed (one round trip)."""
    async with redis.pipeline(transaction=False) as pipe:
        for state in ModerationStatus:
            pipe.zcard(keys.state_index(state))
        sizes: list[int] = await pipe.execute()
    return dict(zip(ModerationStatus, (int(size) for size in sizes), strict=True))


async def list_ids(
    redis: Redis,
    state: ModerationStatus,
    *,
    offset: int = 0,
    limit: int = 50,
    newest_first: bool = True,
) -> list[str]:
    """Ids in `state` by creation time, skipping `offset` (O(log n + offset + limit))."""
    _check_limit(limit)
    if offset < 0:
        raise WriteRequestError(f"expected offset >= 0, found {offset}")
    members = await redis.zrange(
        keys.state_index(state), offset, offset + limit - 1, desc=newest_first
    )
    return [as_text(member) for member in members if _readable_id(member)]


def _readable_id(member: object) -> TypeGuard[bytes | str]:
    # Anyone with Redis access can ZADD junk to an index: a member that is not UTF-8 text
    # names no request, and must not stop the list page or the reconciler's sweep.
    if isinstance(member, str):
        return True
    if not isinstance(member, bytes):
        return False
    try:
        member.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def page_ids(
    redis: Redis,
    state: ModerationStatus,
    *,
    limit: int = 50,
    cursor: str | None = None,
    newest_first: bool = True,
) -> IdPage:
    """A page of ids; pass `next_cursor` / `prev_cursor` back to move either way.

    A cursor carries its own ordering, so `newest_first` only matters for the first page.
    """
    _check_limit(limit)
    index = keys.state_index(state)
    if cursor is None:
        rows = await _first(redis, index, newest_first=newest_first, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return _page(rows, newest_first, next_more=more, prev_more=False)
    position = _Cursor.decode(cursor)
    newest_first = position.newest_first
    # Going forward in display order means descending scores when newest come first.
    descending = newest_first == position.forward
    rows = await _beyond(
        redis, index, position.score, position.request_id, descending=descending, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if position.forward:
        return _page(rows, newest_first, next_more=more, prev_more=True)
    rows.reverse()
    return _page(rows, newest_first, next_more=True, prev_more=more)


def _page(
    rows: list[tuple[str, int]], newest_first: bool, *, next_more: bool, prev_more: bool
) -> IdPage:
    if not rows:
        return IdPage([], None, None)
    first_id, first_score = rows[0]
    last_id, last_score = rows[-1]
    return IdPage(
        ids=[request_id for request_id, _ in rows],
        next_cursor=_Cursor(newest_first, True, last_score, last_id).encode()
        if next_more
        else None,
        prev_cursor=_Cursor(newest_first, False, first_score, first_id).encode()
        if prev_more
        else None,
    )


async def _first(
    redis: Redis, index: str, *, newest_first: bool, limit: int
) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    offset = 0
    for _ in range(_MAX_ROUNDS):  # more than one round only when junk members were passed over
        raw = await redis.zrange(
            index, offset, offset + max(limit, _BATCH) - 1, desc=newest_first, withscores=True
        )
        found.extend(_rows(raw))
        offset += len(raw)
        if len(found) >= limit or len(raw) < max(limit, _BATCH):
            break
    return found[:limit]


async def _beyond(
    redis: Redis, index: str, score: int, request_id: str, *, descending: bool, limit: int
) -> list[tuple[str, int]]:
    """Up to `limit` entries strictly after (score, id) going up, or before it going down."""
    found: list[tuple[str, int]] = []
    offset = 0
    for _ in range(_MAX_ROUNDS):
        if descending:
            raw = await redis.zrange(
                index, score, "-inf", desc=True, byscore=True, withscores=True,
                offset=offset, num=_BATCH,
            )  # fmt: skip
        else:
            raw = await redis.zrange(
                index, score, "+inf", byscore=True, withscores=True, offset=offset, num=_BATCH
            )
        batch = _rows(raw)
        offset += len(raw)
        for member, member_score in batch:
            if member_score == score and (
                member >= request_id if descending else member <= request_id
            ):
                continue  # ties with the cursor that were already shown (or are the cursor)
            found.append((member, member_score))
            if len(found) >= limit:
                return found
        if len(raw) < _BATCH:
            break
    return found


# Scores are creation times in ms; ZADD accepts inf, which int() cannot hold.
_SCORE_BOUND = 2**62


def _rows(raw: Any) -> list[tuple[str, int]]:
    return [
        (as_text(member), int(max(min(score, _SCORE_BOUND), -_SCORE_BOUND)))
        for member, score in raw
        if _readable_id(member)
    ]


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise WriteRequestError(f"expected a page size of 1-{MAX_PAGE_SIZE}, found {limit}")
