"""The notifier's sources: the ledger's events, and periodic looks at what waits or broke.

Each source builds notifications and schedules their deliveries together with the state it
read (the events cursor, the dead-letter count, an account's reconnect mark) in one step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from twitstack.core.logging import get_logger
from twitstack.core.sections.notifier import NotificationEvent, NotifierSettings
from twitstack.core.sections.writer import WriterSettings
from twitstack.notifier import compose
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
DEAD_LETTER_COUNT = "dead_letters"
_RECONNECT = "reconnect:"
_EVENT_KINDS = {
    ModerationStatus.FAILED: NotificationEvent.FAILED,
    ModerationStatus.NEEDS_REVIEW: NotificationEvent.NEEDS_REVIEW,
}
_WAITING_SCAN = 500  # oldest pending requests looked at per check


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
        assert settings.moderation_base_url is not None  # checked when channels are configured
        self._base = settings.moderation_base_url
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
        """Read one batch after the cursor and schedule its notifications; events read."""
        cursor = await self._outbox.state(CURSOR) or await self.start_cursor()
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
        if await self._outbox.schedule(self.deliveries(notifications), guard=guard) < 0:
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
        markers = {f"waiting:{i}": i for i in ids}
        seen = await self._outbox.already_scheduled(list(markers))
        new = [i for marker, i in markers.items() if marker not in seen]
        if not new:
            return 0
        records = await self._records(new)
        notification = compose.waiting(
            new, records, base=self._base, minutes=minutes, now=self._clock()
        )
        new_markers = [f"waiting:{i}" for i in new]
        await self._outbox.schedule(self.deliveries([notification]), markers=new_markers)
        return len(new)

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
        """Report growth of write_queue:dead plus the quarantine since the last look."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.llen(keys.DEAD_LETTER)
            pipe.scard(keys.QUARANTINED_REFS)
            dead, quarantined = await pipe.execute()
        total = int(dead) + int(quarantined)
        last = await self._outbox.state(DEAD_LETTER_COUNT)
        if last is None or not last.isdigit():
            # First look (or a value someone else wrote): the present is the baseline.
            await self._outbox.schedule([], guard=Guard(DEAD_LETTER_COUNT, last or "", str(total)))
            return 0
        grown = total - int(last)
        notifications = []
        if grown > 0 and self._routes[NotificationEvent.DEAD_LETTER]:
            notifications = [compose.dead_letters(grown, total, base=self._base, now=self._clock())]
        if grown != 0:
            guard = Guard(DEAD_LETTER_COUNT, last, str(total))
            await self._outbox.schedule(self.deliveries(notifications), guard=guard)
        return max(grown, 0)

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
