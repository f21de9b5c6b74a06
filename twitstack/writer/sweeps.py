"""Periodic housekeeping of the writer: expiring overdue requests, sampling depths and pauses."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from twitstack.writer.journal import WriterJournal
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.ratelimit import AccountPauses
from twitstack.writes import keys
from twitstack.writes.due_scan import MAX_ROUNDS, pick_due
from twitstack.writes.ledger_types import epoch_ms
from twitstack.writes.models import ModerationStatus, utcnow
from twitstack.writes.quarantine import Quarantine
from twitstack.writes.queue import ReliableQueue
from twitstack.writes.spend import BUDGET_PAUSE

S = ModerationStatus
# needs_review waits for a human even past its expiry (the transition table says so).
_EXPIRABLE = (S.PENDING, S.APPROVED)
_BATCH = 100
_PRUNE_BATCH = 500


async def expire_due(redis: Redis, journal: WriterJournal, quarantine: Quarantine) -> int:
    """Requests past `expires_at` that were never executed become `expired`.

    A record whose move fails for its data (a script stopped by junk in its hash, a key of
    the wrong type) is quarantined and the sweep goes on with the next one; an outage or an
    ACL refusal stops the sweep (its caller retries and reports it). Quarantined records, and
    those due but not expirable (in flight, under review), are passed over: while a batch had
    any, the same pass takes the next batch behind them (due_scan), so they cannot hold back
    the records due after them.
    """
    now = utcnow()
    due = epoch_ms(now)

    async def read(offset: int, count: int) -> list[object]:
        return list(await redis.zrangebyscore(keys.EXPIRY, "-inf", due, start=offset, num=count))

    expired = 0
    handled: set[str] = set()
    for _ in range(MAX_ROUNDS):
        pick = await pick_due(redis, read, want=_BATCH, skip=handled)
        if pick.junk:
            # Junk ZADDed by hand names no request: dropped, as RequestLedger.expire_due does.
            await redis.zrem(keys.EXPIRY, *pick.junk)
        if not pick.ids:
            break
        handled.update(pick.ids)
        moved_here = 0
        for record in await journal.ledger.get_many(pick.ids):
            if record.state in _EXPIRABLE and record.is_expired(now):
                try:
                    moved = await journal.move(
                        record.request, S.EXPIRED, from_states=_EXPIRABLE, reason="expired"
                    )
                except Exception as exc:
                    await quarantine.put_failure("record", record.request.id, exc)
                    continue
                moved_here += moved.ok
        expired += moved_here
        if moved_here == len(pick.ids):
            break  # nothing passed over: the rest waits for the next pass, as before
    return expired


async def prune_lapsed(journal: WriterJournal, *, batches: int = 20) -> int:
    """Terminal requests whose hash has lapsed leave their state index; count them.

    The writer's settle leaves this to here (one call per tick instead of a range read per
    job); a backlog is taken a batch at a time, `batches` at most per tick.
    """
    pruned = 0
    for _ in range(batches):
        taken = await journal.ledger.prune_lapsed(limit=_PRUNE_BATCH)
        pruned += taken
        if taken < _PRUNE_BATCH:
            break
    return pruned


async def sample_depths(
    redis: Redis,
    queue: ReliableQueue,
    metrics: WriterMetrics,
    pauses: AccountPauses,
    accounts: Sequence[str],
) -> None:
    """Queue, processing, dead-letter and schedule depths, the oldest pending request's age,
    and which accounts are paused (a resume by CLI, another replica or expiry shows up here)."""
    depths = await queue.depths()
    metrics.queue_depth.set(depths.queued)
    metrics.processing_depth.set(depths.processing)
    metrics.schedule_depth.set(depths.scheduled)
    metrics.dead_letter_depth.set(depths.dead)
    for account in accounts:
        paused = await pauses.paused(account)
        # A budget hold has its own series and alerts (twitstack_x_spend_budget_reached).
        held = paused is not None and paused.reason != BUDGET_PAUSE
        metrics.account_paused.labels(account=account).set(1 if held else 0)
    oldest = await redis.zrange(keys.state_index(S.PENDING), 0, 0, withscores=True)
    if oldest:
        age_s = (epoch_ms(utcnow()) - float(oldest[0][1])) / 1000
        metrics.oldest_pending_age.set(max(age_s, 0.0))
    else:
        metrics.oldest_pending_age.set(0)
