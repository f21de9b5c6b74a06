"""The notifier's sources: the ledger's events, and periodic looks at what waits or broke.

Each source builds notifications and schedules their deliveries together with the state it
read (the events cursor, the dead-letter count, an account's reconnect mark) in one step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from twitstack.core.logging import get_logger
from twitstack.core.sections.notifier import NotificationEvent, NotifierSettings
from twitstack.core.sections.writer import WriterSettings
from twitstack.notifier import compose
from twitstack.notifier.arrivals import Mark, count_arrivals
from twitstack.notifier.coalesce import Coalescer
from twitstack.notifier.models import Delivery, Notification
from twitstack.notifier.outbox import Guard, NotificationOutbox
from twitstack.writes import keys
from twitstack.writes.events import STREAM_START, LedgerEvent, read_event_batch
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.ledger_types import LedgerRecord, as_text
from twitstack.writes.models import ModerationStatus
from twitstack.writes.quarantine import Quarantine
from twitstack.writes.x_accounts import ConnectedAccount

log = get_logger("twitstack.notifier")

CURSOR = "cursor"
DEAD_LETTER_MARKS = "dead_letter_marks"  # the newest entry seen on each list
_RECONNECT = "reconnect:"
_EVENT_KINDS = {
    ModerationStatus.FAILED: NotificationEvent.FAILED,
    ModerationStatus.NEEDS_REVIEW: NotificationEvent.NEEDS_REVIEW,
}
_WAITING_SCAN = 500  # oldest pending requests looked at per check
# Reads of one event, alone, that may fail (for a reason other than Redis) before the event
# is quarantined and passed over: a poison event must not stop every later notification.
EVENT_ATTEMPTS = 3
UNPROCESSABLE = "unprocessable_event"


class NotificationSources:
    """Turns what Redis holds into scheduled deliveries for the configured channels."""

    def __init__(
        self,
        redis: Redis,
        outbox: NotificationOutbox,
        settings: NotifierSettings,
        writer: WriterSettings,
        quarantine: Quarantine,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._outbox = outbox
        self._settings = settings
        self._writer = writer
        self._quarantine = quarantine
        self._ledger = RequestLedger(redis, quarantine=quarantine)
        self._clock = clock
        self._cursor: str | None = None  # the last cursor this process moved the stream to
        # After a batch failed, events up to this id are read one at a time to find the culprit.
        self._one_by_one_until: tuple[int, int] | None = None
        self._failures: tuple[str, int] = ("", 0)  # (cursor, failed reads of its next event)
        self._waiting_scan = 0  # where forget_waiting's scan of reported requests goes on
        assert settings.moderation_base_url is not None  # checked when channels are configured
        self._base = settings.moderation_base_url
        self._coalescer = Coalescer(redis, base=self._base, window_s=settings.coalesce_window_s)
        self._routes = {
            kind: [name for name, ch in settings.channels().items() if kind in ch.events]
            for kind in NotificationEvent
        }

    def deliveries(self, notifications: Sequence[Notification]) -> list[Delivery]:
        """One delivery per notification and channel that wants its kind."""
        return [Delivery(n, ch) for n in notifications for ch in self._routes[n.event]]

    async def start_cursor(self) -> str:
        """The events cursor; on the very first start, the stream's end (no flood of history)."""
        newest = await self._redis.xrevrange(keys.EVENTS, count=1)
        end = as_text(newest[0][0]) if newest and newest[0][0] is not None else STREAM_START
        if await self._outbox.set_state_if_absent(CURSOR, end):
            log.info("notifier.cursor_created", cursor=end)
        return await self._outbox.state(CURSOR) or end

    async def read_events(self, *, block_ms: int, count: int = 100) -> int:
        """Read one batch after the cursor and schedule its notifications; events read.

        A batch that fails for a reason other than Redis is read again one event at a time;
        an event that still fails EVENT_ATTEMPTS times is quarantined and the cursor moved
        past it, so the events after it are notified.
        """
        cursor = await self._outbox.state(CURSOR) or await self.start_cursor()
        until, at = self._one_by_one_until, _stream_order(cursor)
        single = until is not None and at is not None and at < until
        try:
            return await self._read_after(cursor, block_ms=block_ms, count=1 if single else count)
        except (RedisError, OSError):
            raise
        except Exception as exc:
            if not await self._read_failed(cursor, exc, single=single, count=count):
                raise
            return 0

    async def _read_failed(self, cursor: str, exc: Exception, *, single: bool, count: int) -> bool:
        """Note a failed read after `cursor`; True once its event was quarantined."""
        entries = await self._redis.xrange(keys.EVENTS, min="(" + cursor, count=count)
        ids = [as_text(entry_id) for entry_id, _fields in entries or [] if entry_id is not None]
        if not ids:
            return False
        if not single:
            self._one_by_one_until = _stream_order(ids[-1])
            log.warning("notifier.batch_failed", cursor=cursor, events=len(ids),
                        error=type(exc).__name__)  # fmt: skip
            return False
        failed_cursor, failures = self._failures
        failures = failures + 1 if failed_cursor == cursor else 1
        self._failures = (cursor, failures)
        if failures < EVENT_ATTEMPTS:
            return False
        poison = ids[0]
        await self._quarantine.put("event", poison, UNPROCESSABLE,
                                   f"{failures} attempts: {type(exc).__name__}: {exc}")  # fmt: skip
        if await self._outbox.schedule([], guard=Guard(CURSOR, cursor, poison)) >= 0:
            self._cursor = poison
        log.error("notifier.event_skipped", stream_id=poison, attempts=failures,
                  error=type(exc).__name__)  # fmt: skip
        self._failures = ("", 0)
        return True

    async def _read_after(self, cursor: str, *, block_ms: int, count: int) -> int:
        try:
            batch = await read_event_batch(
                self._redis, after=cursor, count=count, block_ms=block_ms
            )
        except ResponseError as exc:
            if "stream ID" not in str(exc):
                raise
            # Anyone with Redis access can write the cursor: go back to the last one this
            # process read from (nothing lost), else to the stream's end.
            log.warning("notifier.cursor_unreadable", cursor=cursor[:60], restored=self._cursor)
            await self._outbox.forget_state(CURSOR)
            if self._cursor is not None:
                await self._outbox.set_state_if_absent(CURSOR, self._cursor)
            return 0
        if batch.last_id is None:
            return 0
        for unreadable in batch.unreadable:
            await self._quarantine.put_error(unreadable)
        groups: dict[NotificationEvent, list[LedgerEvent]] = {}
        for event in batch.events:
            kind = _EVENT_KINDS.get(event.to_state)
            if kind is not None and self._routes[kind]:
                groups.setdefault(kind, []).append(event)
        records = await self._records([e.request_id for g in groups.values() for e in g])
        now = self._clock()
        notifications = [
            compose.from_events(kind, events, records, base=self._base, now=now)
            for kind, events in groups.items()
        ]
        guard = Guard(CURSOR, cursor, batch.last_id)
        if await self._coalescer.schedule(self.deliveries(notifications), guard=guard) < 0:
            log.info("notifier.cursor_moved", cursor=cursor)  # another notifier took the batch
        else:
            self._cursor = batch.last_id
        return len(batch.events) + len(batch.unreadable)

    async def check_waiting(self) -> int:
        """Report pending requests older than waiting_after_min, each once; how many."""
        if not self._routes[NotificationEvent.WAITING]:
            return 0
        minutes = self._settings.waiting_after_min
        cutoff_ms = int((self._clock() - minutes * 60) * 1000)
        raw = await self._redis.zrangebyscore(
            keys.state_index(ModerationStatus.PENDING), "-inf", cutoff_ms, start=0,
            num=_WAITING_SCAN,
        )  # fmt: skip
        ids = [as_text(i) for i in raw if isinstance(i, bytes | str)]
        seen = await self._outbox.already_scheduled(ids, waiting=True)
        new = [i for i in ids if i not in seen]
        if not new:
            return 0
        records = await self._records(new)
        notification = compose.waiting(
            new, records, base=self._base, minutes=minutes, now=self._clock()
        )
        await self._outbox.schedule(self.deliveries([notification]), markers=new)
        return len(new)

    async def forget_waiting(self) -> None:
        """Forget reported requests that are no longer pending (one scan step per check)."""
        self._waiting_scan = await self._outbox.forget_waiting(
            cursor=self._waiting_scan, still_waiting=self._pending
        )

    async def _pending(self, ids: list[str]) -> set[str]:
        scores = await self._redis.zmscore(keys.state_index(ModerationStatus.PENDING), ids)
        return {i for i, score in zip(ids, scores, strict=True) if score is not None}

    async def check_reconnect(self) -> int:
        """Report each account newly marked `reconnect_needed`; forget marks that cleared."""
        if not self._routes[NotificationEvent.RECONNECT]:
            return 0
        reported = 0
        for name in await self._oauth2_accounts():
            needed, reason = await self._redis.hmget(
                keys.oauth2_tokens(name), ["reconnect_needed", "reconnect_reason"]
            )
            field = _RECONNECT + name
            if needed is None or as_text(needed) != "1":
                await self._outbox.forget_state(field)
                continue
            now = self._clock()
            notification = compose.reconnect(
                name, as_text(reason) if reason else "X refused its refresh token",
                base=self._base, now=now, episode=f"{now:.6f}",
            )  # fmt: skip
            guard = Guard(field, "", repr(now))
            if await self._outbox.schedule(self.deliveries([notification]), guard=guard) >= 0:
                reported += 1
        return reported

    async def check_dead_letters(self) -> int:
        """Report entries that arrived in write_queue:dead or the quarantine since the last look.

        Arrivals, not growth: the newest entry seen on each list is remembered, so entries
        cleared while others arrive do not hide the new ones.
        """
        last_raw = await self._outbox.state(DEAD_LETTER_MARKS)
        last = _marks(last_raw)
        dead, dead_mark = await count_arrivals(
            self._redis, keys.DEAD_LETTER, None if last is None else last[0], newest_at_tail=True
        )
        quarantined, quarantine_mark = await count_arrivals(
            self._redis, keys.QUARANTINE, None if last is None else last[1], newest_at_tail=False
        )
        new_raw = json.dumps(
            {"dead": dead_mark.to_dict(), "quarantine": quarantine_mark.to_dict()}, sort_keys=True
        )
        arrived = dead + quarantined
        if new_raw == last_raw and not arrived:
            return 0
        notifications = []
        if arrived and self._routes[NotificationEvent.DEAD_LETTER]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.llen(keys.DEAD_LETTER)
                pipe.scard(keys.QUARANTINED_REFS)
                total = sum(int(n) for n in await pipe.execute())
            notifications = [compose.dead_letters(arrived, total, base=self._base,
                                                  now=self._clock())]  # fmt: skip
        guard = Guard(DEAD_LETTER_MARKS, last_raw or "", new_raw)
        if await self._outbox.schedule(self.deliveries(notifications), guard=guard) < 0:
            return 0  # another notifier looked at the same time and reported them
        return arrived

    async def _records(self, ids: list[str]) -> dict[str, LedgerRecord | None]:
        """The ledger records of `ids` (None for gone or unreadable ones, quarantined)."""
        found = await self._ledger.get_many(dict.fromkeys(ids))
        by_id: dict[str, LedgerRecord | None] = dict.fromkeys(ids)
        by_id.update({record.request.id: record for record in found})
        return by_id

    async def _oauth2_accounts(self) -> list[str]:
        configured = [a.name for a in self._writer.accounts if a.auth == "oauth2"]
        connected = ConnectedAccount.read_all(await self._redis.hgetall(keys.X_ACCOUNTS))
        return list(dict.fromkeys([*configured, *(a.name for a in connected)]))


def _stream_order(stream_id: str) -> tuple[int, int] | None:
    """A stream id as a comparable pair; None if it is not one."""
    ms, _, seq = stream_id.partition("-")
    try:
        return int(ms), int(seq or "0")
    except ValueError:
        return None


def _marks(raw: str | None) -> tuple[Mark, Mark] | None:
    """The remembered (dead-letter, quarantine) marks; None on the first look or junk."""
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    dead, quarantine = Mark.from_dict(data.get("dead")), Mark.from_dict(data.get("quarantine"))
    return (dead, quarantine) if dead is not None and quarantine is not None else None
