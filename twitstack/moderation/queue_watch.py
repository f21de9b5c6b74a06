"""Moderation's watch on write_queue: pending requests become reviewable with no writer up, and
how long requests wait (for a moderator, and approved for a writer) shows with no writer up."""

from __future__ import annotations

import math
from datetime import datetime

from redis.asyncio import Redis

from twitstack.core.logging import get_logger
from twitstack.moderation.history import HistoryIngester
from twitstack.writes import keys
from twitstack.writes.errors import UnreadableError, WireFormatError
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteRequest
from twitstack.writes.waiting import WaitingRecorder
from twitstack.writes.wire import decode_write_request

log = get_logger("twitstack.moderation.queue_watch")
ACTOR = "moderation"
WATCH_EVERY_S = 2.0
APPROVED_AGE_EVERY_S = 10.0
APPROVED_SCAN = 500  # approved records and queued messages looked at per sample, oldest first
_APPROVED_ONLY = frozenset({ModerationStatus.APPROVED})


async def record_waiting(recorder: WaitingRecorder, history: HistoryIngester) -> int:
    """One sweep: record what waits unrecorded, log each, bring the history up to date."""
    created = await recorder.sweep()
    for request in created:
        log.info(
            "moderation.request_recorded",
            request_id=request.id,
            account=request.account,
            action=str(request.action),
            reason="received",
        )
    if created:
        await history.catch_up()
    return len(created)


def due_age_s(request: WriteRequest, now: datetime) -> float:
    """How long an approved request has been due: since its approval, or its not_before."""
    due = request.approval.approved_at if request.approval is not None else request.created_at
    if request.not_before is not None and request.not_before > due:
        due = request.not_before
    return max((now - due).total_seconds(), 0.0)


async def oldest_approved_age_s(
    redis: Redis, ledger: RequestLedger, now: datetime, *, limit: int = APPROVED_SCAN
) -> float:
    """The longest any approved, due request has waited without being executed (0: none).

    Looks at the ledger's approved requests (queued or scheduled; a scheduled one counts from
    its not_before) and at approved messages on write_queue, which a producer may have put
    there signed: the ledger holds those only once a writer takes them. Both oldest first, at
    most `limit` each, so with a longer backlog the age is a lower bound.
    """
    ages = [0.0]
    ids = []
    for member in await redis.zrange(keys.state_index(ModerationStatus.APPROVED), 0, limit - 1):
        try:
            ids.append(member.decode() if isinstance(member, bytes) else str(member))
        except UnicodeDecodeError:
            continue  # junk in the index names no request; the ledger's readers drop it
    unreadable: list[UnreadableError] = []  # quarantined by the readers that act on them
    for record in await ledger.get_many(ids, unreadable=unreadable):
        if record.state is ModerationStatus.APPROVED:
            ages.append(due_age_s(record.request, now))
    for raw in await redis.lrange(keys.WRITE_QUEUE, 0, limit - 1):
        try:
            request = decode_write_request(
                raw if isinstance(raw, bytes) else raw.encode(), allowed_states=_APPROVED_ONLY
            )
        except WireFormatError:
            continue  # pending, or malformed: the writer dead-letters it with its reason
        ages.append(due_age_s(request, now))
    return max(ages)


async def oldest_pending_age_s(redis: Redis, now: datetime) -> float:
    """How long the oldest pending request has waited for a moderator (0: none).

    The pending index is scored by creation time in ms; a junk score (anyone with Redis access
    can ZADD one) is passed over.
    """
    found = await redis.zrange(keys.state_index(ModerationStatus.PENDING), 0, 9, withscores=True)
    for item in found:
        score = float(item[1])
        if math.isfinite(score):
            return max(now.timestamp() - score / 1000, 0.0)
    return 0.0
