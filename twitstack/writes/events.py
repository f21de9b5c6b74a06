"""The ledger's event stream: one entry per state change, read with XREAD from a stored id."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from twitstack.writes import keys
from twitstack.writes.errors import UnreadableError
from twitstack.writes.ledger_types import as_text
from twitstack.writes.models import ModerationStatus

# Start of the stream: pass it as `after` to read from the oldest retained event.
STREAM_START = "0-0"


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One state change; `from_state` is None when the request was first recorded."""

    stream_id: str  # pass the last one back as `after` to continue reading
    request_id: str
    from_state: ModerationStatus | None
    to_state: ModerationStatus
    actor: str
    reason: str
    time: datetime
    revision: int
    attempt: int
    result: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class EventBatch:
    """What one read returned: the readable events, the unreadable entries, the last id read.

    Continue from `last_id` (not from the last readable event): an unreadable entry must be
    passed over, or every later read would stop at it again.
    """

    events: list[LedgerEvent]
    unreadable: list[UnreadableError]
    last_id: str | None


def parse_event(stream_id: bytes | str, fields: Mapping[bytes | str, bytes | str]) -> LedgerEvent:
    """A LedgerEvent from one stream entry; UnreadableError if it is not one.

    The ledger's scripts write the stream, but anyone with Redis access can XADD to it.
    """
    try:
        return _parse_event(stream_id, fields)
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        ref = stream_id.decode("utf-8", "replace") if isinstance(stream_id, bytes) else stream_id
        detail = f"{type(exc).__name__}: {exc}"[:300]
        raise UnreadableError("event", ref, "malformed_event", detail) from None


def _parse_event(stream_id: bytes | str, fields: Mapping[bytes | str, bytes | str]) -> LedgerEvent:
    text = {as_text(key): as_text(value) for key, value in fields.items()}
    result = text.get("result")
    return LedgerEvent(
        stream_id=as_text(stream_id),
        request_id=text["id"],
        from_state=ModerationStatus(text["from"]) if text.get("from") else None,
        to_state=ModerationStatus(text["to"]),
        actor=text.get("actor", ""),
        reason=text.get("reason", ""),
        time=datetime.fromisoformat(text["time"]),
        revision=int(text.get("revision", "0")),
        attempt=int(text.get("attempt", "0")),
        result=json.loads(result) if result else None,
    )


async def read_events(
    redis: Redis,
    *,
    after: str = STREAM_START,
    count: int = 100,
    block_ms: int | None = None,
) -> list[LedgerEvent]:
    """Up to `count` events newer than `after`, oldest first.

    With `block_ms`, waits that long for new events when there are none (0 waits forever; avoid
    it outside a cancellable task). If `after` has been trimmed away by MAXLEN, reading resumes
    at the oldest retained event: consumers that fall behind by more than `events_maxlen`
    changes lose the oldest ones, so they should persist `stream_id` often.
    """
    return (await read_event_batch(redis, after=after, count=count, block_ms=block_ms)).events


async def read_event_batch(
    redis: Redis,
    *,
    after: str = STREAM_START,
    count: int = 100,
    block_ms: int | None = None,
) -> EventBatch:
    """Like `read_events`, keeping the unreadable entries apart instead of dropping them."""
    reply = await redis.xread({keys.EVENTS: after}, count=count, block=block_ms)
    return _parse_reply(reply)


async def read_events_range(
    redis: Redis, *, start: str = "-", end: str = "+", count: int = 100
) -> list[LedgerEvent]:
    """Events between two stream ids inclusive (XRANGE), for audits and history views."""
    entries = await redis.xrange(keys.EVENTS, min=start, max=end, count=count)
    pairs = [(i, fields) for i, fields in entries or [] if i is not None and fields is not None]
    return _parse_entries(pairs).events


def _parse_reply(reply: Any) -> EventBatch:
    if isinstance(reply, Mapping):
        # RESP3: {stream: [[(id, fields), ...]]}
        batches = [batch for wrapped in reply.values() for batch in wrapped]
    else:
        # RESP2: [[stream, [(id, fields), ...]]]
        batches = [entries for _stream, entries in reply or []]
    return _parse_entries([entry for batch in batches for entry in batch])


def _parse_entries(entries: list[Any]) -> EventBatch:
    events: list[LedgerEvent] = []
    unreadable: list[UnreadableError] = []
    for entry_id, fields in entries:
        try:
            events.append(parse_event(entry_id, fields))
        except UnreadableError as exc:
            unreadable.append(exc)
    last_id = as_text(entries[-1][0]) if entries else None
    return EventBatch(events, unreadable, last_id)
