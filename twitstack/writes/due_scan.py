"""Picking a sweep's records from a due index, past quarantined ones, so they cannot starve it.

Sweeps (reconciliation, expiry) take a batch from the head of an index each pass. A record a
sweep cannot move (quarantined: junk in its hash or its keys) stays in its index, visible to
the UI and to `redis-cli`, until an operator fixes it; were it taken again each pass, a head of
such records as long as a batch would hold back every record behind them for ever. So a pick
leaves out the ids whose quarantine marker (`writes:quarantine:refs`, `record:<id>`) is set
and those the same pass already handled, scanning at most `MAX_SCAN` ids of the index.
Removing the marker (docs/runbook.md, TwitstackQuarantineGrowing) puts a record back in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from twitstack.writes import keys

# (offset, count) -> members of the index in sweep order.
IndexRange = Callable[[int, int], Awaitable[Sequence[object]]]

_PAGE = 1000
# Ids read per pick at most: a pick behind more quarantined records than this finds none
# (the quarantine list keeps 10 000 entries too: past that many, something else is wrong).
MAX_SCAN = 10_000
# Batches one pass takes at most, each after one in which records were passed over.
MAX_ROUNDS = 10


def record_marker(request_id: str) -> str:
    """The quarantine marker of a ledger record (Quarantine.put with source "record")."""
    return f"record:{request_id}"


@dataclass(slots=True)
class DuePick:
    """Ids to work on, in index order, members that name no request (not UTF-8), and
    quarantined ids passed over (at most `want` of them: a reconciler still counts them as
    rivals for a post, since a record it cannot move may be the one X's post belongs to)."""

    ids: list[str] = field(default_factory=list)
    junk: list[bytes] = field(default_factory=list)
    held: list[str] = field(default_factory=list)


async def pick_due(
    redis: Redis, read: IndexRange, *, want: int, skip: Collection[str] = ()
) -> DuePick:
    """Up to `want` ids from the head of an index, leaving out those in `skip` and those
    quarantined as records."""
    pick = DuePick()
    offset = 0
    while len(pick.ids) < want and offset < MAX_SCAN:
        page = await read(offset, min(_PAGE, MAX_SCAN - offset))
        offset += len(page)
        fresh: dict[str, None] = {}
        for member in page:
            request_id = _text(member)
            if request_id is None:
                if isinstance(member, bytes):
                    pick.junk.append(member)
            elif request_id not in skip:
                fresh[request_id] = None
        if fresh:
            marked = await redis.smismember(
                keys.QUARANTINED_REFS, [record_marker(request_id) for request_id in fresh]
            )
            for request_id, quarantined in zip(fresh, marked, strict=True):
                if not quarantined and len(pick.ids) < want:
                    pick.ids.append(request_id)
                elif quarantined and len(pick.held) < want:
                    pick.held.append(request_id)
        if len(page) < _PAGE:
            break
    return pick


def _text(member: object) -> str | None:
    # Anyone with Redis access can ZADD junk: a member that is not UTF-8 names no request.
    if isinstance(member, str):
        return member
    if isinstance(member, bytes):
        try:
            return member.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None
