"""The notifier's sources: the ledger's events, and periodic looks at what waits or broke.

Each source builds notifications and schedules their deliveries together with the state it
read (the events cursor, the dead-letter count, an account's reconnect mark) in one step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
from twitstack.writes.errors import UnreadableError
from twitstack.writes.events import STREAM_START, LedgerEvent, parse_event
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
# Reads of one event, alone, that may fail or never finish (the notifier killed, crashed or
# hung on it) before the event is quarantined and passed over: a poison event must not stop
# every later notification. Counted in Redis (ATTEMPT), so restarts do not reset the count.
EVENT_ATTEMPTS = 3
# The read in progress, beside the cursor in the notifier's state: one field, overwritten by
# the next read (JSON: after, until, attempts, error).
ATTEMPT = "event_attempt"
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
        # (noted, previous) attempt to take back: its read failed because Redis did.
        self._undo: tuple[str, str] | None = None
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

        Each read is noted in Redis (ATTEMPT) before it is processed, so a read that fails,
        or a notifier that dies or hangs on it and is restarted, is counted across restarts.
        A batch whose read did not finish is read again one event at a time; an event whose
        read was started EVENT_ATTEMPTS times without finishing is quarantined and the cursor
        moved past it, so the events after it are notified.
        """
        await self._take_back_attempt()
        cursor = await self._outbox.state(CURSOR) or await self.start_cursor()
        noted_raw = await self._outbox.state(ATTEMPT)
        noted = _Attempt.parse(noted_raw)
        single = noted.one_by_one(cursor)
        try:
            entries = await self._entries_after(cursor, block_ms=block_ms,
                                                count=1 if single else count)  # fmt: skip
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
        if not entries:
            return 0
        last_id = as_text(entries[-1][0])
        attempt = noted.next(cursor, last_id, single=single)
        if single and attempt.attempts > EVENT_ATTEMPTS:
            await self._pass_over(cursor, last_id, noted)
            return 0
        # Compare-and-set: two notifiers reading the same event both count their attempt.
        if await self._outbox.schedule([], guard=Guard(ATTEMPT, noted_raw or "",
                                                        attempt.dump())) < 0:  # fmt: skip
            return 0
        try:
            return await self._process(cursor, entries)
        except (RedisError, OSError):
            # Redis failing is not the event's fault: take the attempt back once it answers.
            self._undo = (attempt.dump(), noted_raw or "")
            raise
        except Exception as exc:
            if single:
                failed = attempt.failed(f"{type(exc).__name__}: {exc}")
                await self._outbox.schedule([], guard=Guard(ATTEMPT, attempt.dump(),
                                                            failed.dump()))  # fmt: skip
            else:
                log.warning("notifier.batch_failed", cursor=cursor, events=len(entries),
                            error=type(exc).__name__)  # fmt: skip
            raise

    async def _take_back_attempt(self) -> None:
        """Undo the attempt noted before a read that Redis (not the event) made fail."""
        if self._undo is not None:
            noted, previous = self._undo
            await self._outbox.schedule([], guard=Guard(ATTEMPT, noted, previous))
            self._undo = None

    async def _pass_over(self, cursor: str, poison: str, noted: _Attempt) -> None:
        """Quarantine the event after `cursor` whose reads never finished, and move past it."""
        attempts = noted.attempts
        why = noted.error or "the notifier stopped while processing it (killed, crashed or hung)"
        if await self._outbox.schedule([], guard=Guard(CURSOR, cursor, poison)) < 0:
            return  # another notifier moved the cursor first
        self._cursor = poison
        await self._quarantine.put("event", poison, UNPROCESSABLE, f"{attempts} attempts: {why}")
        log.error("notifier.event_skipped", stream_id=poison, attempts=attempts,
                  error=why[:200])  # fmt: skip

    async def _entries_after(self, cursor: str, *, block_ms: int, count: int) -> list[Any]:
        """The raw (id, fields) entries after `cursor`: noted before any of them is parsed."""
        reply = await self._redis.xread({keys.EVENTS: cursor}, count=count, block=block_ms)
        if isinstance(reply, Mapping):  # RESP3: {stream: [[(id, fields), ...]]}
            batches: list[Any] = [batch for wrapped in reply.values() for batch in wrapped]
        else:  # RESP2: [[stream, [(id, fields), ...]]]
            batches = [entries for _stream, entries in reply or []]
        return [entry for batch in batches for entry in batch if entry[0] is not None]

    async def _process(self, cursor: str, entries: list[Any]) -> int:
        events: list[LedgerEvent] = []
        unreadable: list[UnreadableError] = []
        for entry_id, fields in entries:
            try:
                events.append(parse_event(entry_id, fields or {}))
            except UnreadableError as exc:
                unreadable.append(exc)
        last_id = as_text(entries[-1][0])
        for error in unreadable:
            await self._quarantine.put_error(error)
        groups: dict[NotificationEvent, list[LedgerEvent]] = {}
        for event in events:
            kind = _EVENT_KINDS.get(event.to_state)
            if kind is not None and self._routes[kind]:
                groups.setdefault(kind, []).append(event)
        records = await self._records([e.request_id for g in groups.values() for e in g])
        now = self._clock()
        notifications = [
            compose.from_events(kind, events, records, base=self._base, now=now)
            for kind, events in groups.items()
        ]
        guard = Guard(CURSOR, cursor, last_id)
        if await self._coalescer.schedule(self.deliveries(notifications), guard=guard) < 0:
            log.info("notifier.cursor_moved", cursor=cursor)  # another notifier took the batch
        else:
            self._cursor = last_id
        return len(events) + len(unreadable)

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


@dataclass(frozen=True, slots=True)
class _Attempt:
    """The last read noted: after which cursor, up to which id, and how many times alone.

    `until`: a read up to it did not finish, so events up to it are read one at a time to
    find the culprit. `attempts`: reads of the single event after `after` started so far.
    """

    after: str = ""
    until: str = ""
    attempts: int = 0
    error: str = ""

    @classmethod
    def parse(cls, raw: str | None) -> _Attempt:
        """The noted attempt; none for junk (anyone with Redis access can write the state)."""
        try:
            data = json.loads(raw) if raw else None
            if not isinstance(data, dict):
                return cls()
            return cls(str(data["after"]), str(data["until"]), int(data["attempts"]),
                       str(data.get("error", "")))  # fmt: skip
        except (ValueError, TypeError, KeyError, RecursionError):
            return cls()

    def dump(self) -> str:
        return json.dumps({"after": self.after, "until": self.until, "attempts": self.attempts,
                           "error": self.error}, sort_keys=True)  # fmt: skip

    def one_by_one(self, cursor: str) -> bool:
        """Whether the events after `cursor` are to be read one at a time."""
        at, until = _stream_order(cursor), _stream_order(self.until)
        if self.after == cursor and self.until:
            return True  # a read after this very cursor did not finish
        return at is not None and until is not None and at < until

    def next(self, cursor: str, last_id: str, *, single: bool) -> _Attempt:
        """The attempt to note before reading up to `last_id` after `cursor`."""
        if not single:
            return _Attempt(cursor, last_id, 0)
        before = self.attempts if self.after == cursor else 0
        until = self.until if self.one_by_one(cursor) else last_id
        return _Attempt(cursor, until, before + 1, self.error if self.after == cursor else "")

    def failed(self, error: str) -> _Attempt:
        return _Attempt(self.after, self.until, self.attempts, error[:300])
