"""Moderation's watch on write_queue: pending requests become reviewable with no writer up."""

from __future__ import annotations

from twitstack.core.logging import get_logger
from twitstack.moderation.history import HistoryIngester
from twitstack.writes.waiting import WaitingRecorder

log = get_logger("twitstack.moderation.queue_watch")
ACTOR = "moderation"
WATCH_EVERY_S = 2.0


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
