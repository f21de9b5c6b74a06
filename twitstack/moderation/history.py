"""Copy the ledger's event stream into SQLite, resuming from the last stream id stored there.

Events and the cursor are committed in one transaction, and events are keyed by stream id, so a
crash between reading and committing re-reads the same batch: nothing missed, nothing doubled.
The `requests` table is a query-friendly projection of each request's latest ledger record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import anyio
from redis.asyncio import Redis

from twitstack.core.logging import get_logger
from twitstack.moderation.card_context import context_of
from twitstack.moderation.db import Database, Transaction
from twitstack.moderation.media_badge import media_of
from twitstack.moderation.metrics import ModerationMetrics
from twitstack.moderation.policy import refusal_of
from twitstack.writes import keys
from twitstack.writes.errors import UnreadableError
from twitstack.writes.events import STREAM_START, EventBatch, read_event_batch
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.ledger_types import LedgerRecord, as_text
from twitstack.writes.models import ModerationStatus
from twitstack.writes.quarantine import Quarantine

log = get_logger("twitstack.moderation.history")
START = STREAM_START
_BATCH = 500
_INDEX_CHUNK = 1000


def request_text(payload: dict[str, Any], action: str) -> str:
    """The human text of a request: what a tweet, DM or thread says, or what a delete targets."""
    text = payload.get("text")
    if isinstance(text, str):
        return text
    if action == "delete":
        return f"delete tweet {payload.get('tweet_id', '?')}"
    parts = payload.get("parts")
    if action == "thread" and isinstance(parts, list):
        texts = [str(p.get("text", "")) for p in parts if isinstance(p, dict)]
        return f"thread of {len(texts)}: " + " | ".join(texts)
    return ""


def _stream_id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


_UPSERT = """
INSERT INTO requests (id, action, account, author, state, text, revision, created_at, updated_at,
    not_before, last_actor, last_reason, result, data, refusal, context, posted_id,
    content_hash, media)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT(id) DO UPDATE SET
    action=excluded.action, account=excluded.account, author=excluded.author,
    state=excluded.state, text=excluded.text, revision=excluded.revision,
    updated_at=excluded.updated_at, not_before=excluded.not_before,
    last_actor=excluded.last_actor, last_reason=excluded.last_reason,
    result=excluded.result, data=excluded.data, refusal=excluded.refusal,
    context=excluded.context, posted_id=excluded.posted_id, content_hash=excluded.content_hash,
    media=excluded.media
WHERE excluded.updated_at >= requests.updated_at
"""
# Every revision the history sees keeps its text, for the diffs between revisions.
_REVISION = """
INSERT OR IGNORE INTO request_revisions (request_id, revision, text, at) VALUES (?,?,?,?)
"""


def _posted_id(record: LedgerRecord) -> str | None:
    result = record.result or {}
    tweet_id = result.get("tweet_id")
    executed = record.state is ModerationStatus.EXECUTED and str(record.request.action) == "tweet"
    return tweet_id if executed and isinstance(tweet_id, str) and tweet_id.isdigit() else None


def _row(record: LedgerRecord) -> tuple[Any, ...]:
    request = record.request
    data = dict(request.to_dict())
    data["attempt"] = record.attempt
    return (
        request.id,
        str(request.action),
        request.account,
        request.author or "",
        str(record.state),
        request_text(dict(request.payload), str(request.action)),
        request.revision,
        request.created_at.timestamp(),
        record.updated_at.timestamp(),
        None if request.not_before is None else request.not_before.timestamp(),
        record.last_actor,
        record.last_reason,
        None if record.result is None else json.dumps(record.result, sort_keys=True),
        json.dumps(data, sort_keys=True),
        refusal_of(request.source),
        context_of(request.payload, request.source),
        _posted_id(record),
        request.content_hash(),
        media_of(request.payload),
    )


async def upsert_records(tx: Transaction, records: Iterable[LedgerRecord]) -> None:
    """Write the latest known record of each request into the projection."""
    records = list(records)
    await tx.executemany(_UPSERT, [_row(r) for r in records])
    await tx.executemany(
        _REVISION,
        [
            (
                r.request.id,
                r.request.revision,
                request_text(dict(r.request.payload), str(r.request.action)),
                r.updated_at.timestamp(),
            )
            for r in records
        ],
    )


class HistoryIngester:
    """Reads `writes:events` from the stored cursor and commits events + projection + cursor."""

    def __init__(
        self,
        db: Database,
        redis: Redis,
        ledger: RequestLedger,
        metrics: ModerationMetrics,
        *,
        batch: int = _BATCH,
    ) -> None:
        self._db = db
        self._redis = redis
        self._ledger = ledger
        self._metrics = metrics
        self._batch = batch
        self.quarantine = Quarantine(redis, metrics.quarantined, service="moderation")
        # The background loop and post-action syncs must not interleave batches.
        self._lock = anyio.Lock()
        # Bumped after every commit that may change the `requests` table (see ListCache).
        self.generation = 0

    async def cursor(self) -> str:
        value = await self._db.fetchval(
            "SELECT last_id FROM ingest_cursor WHERE stream = ?", (keys.EVENTS,)
        )
        return str(value) if value else START

    async def prepare(self) -> None:
        """Before the first read: rebuild the projection from the state indexes if the stream
        no longer holds everything after our cursor (first start, or trimmed while we were down).
        """
        cursor = await self.cursor()
        if cursor == START or await self._gap_after(cursor):
            count = await self.resync_from_indexes()
            log.info("moderation.history_resynced", requests=count, cursor=cursor)
        filled = await self.fill_missing_hashes()
        if filled:
            log.info("moderation.history_hashes_filled", requests=filled)

    async def fill_missing_hashes(self) -> int:
        """Re-project requests still waiting for review whose row has no content hash (rows
        written before schema 7): the queue's checkboxes bind to that hash."""
        total = 0
        for _ in range(10_000):  # bounded: 10M waiting requests at most
            rows = await self._db.fetchall(
                "SELECT id FROM requests WHERE content_hash = ''"
                " AND state IN ('pending', 'needs_review') LIMIT ?",
                (_INDEX_CHUNK,),
            )
            ids = [str(r[0]) for r in rows]
            if not ids:
                break
            unreadable: list[UnreadableError] = []
            records = await self._ledger.get_many(ids, unreadable=unreadable)
            for error in unreadable:
                await self.quarantine.put_error(error)
            found = {r.request.id for r in records}
            async with self._db.transaction() as tx:
                await upsert_records(tx, records)
                # Gone from the ledger or unreadable: marked, so the loop does not see it again.
                await tx.executemany(
                    "UPDATE requests SET content_hash = '-' WHERE id = ? AND content_hash = ''",
                    [(i,) for i in ids if i not in found],
                )
            self.generation += 1
            total += len(records)
        return total

    async def _gap_after(self, cursor: str) -> bool:
        first = await self._redis.xrange(keys.EVENTS, count=1)
        if not first:
            return False
        raw_id = first[0][0]
        if raw_id is None:
            return False
        first_id = as_text(raw_id)
        # The oldest kept entry is newer than our cursor: entries between them may have been
        # trimmed (the stream cannot tell us), so the caller resyncs to be safe.
        return _stream_id_key(first_id) > _stream_id_key(cursor)

    async def resync_from_indexes(self) -> int:
        """Upsert every request the ledger's state indexes know about."""
        total = 0
        for state in ModerationStatus:
            index = keys.state_index(state)
            start = 0
            for _ in range(100_000):  # bounded: 100M requests at most
                chunk = await self._redis.zrange(index, start, start + _INDEX_CHUNK - 1)
                ids = [i.decode() if isinstance(i, bytes) else str(i) for i in chunk]
                if not ids:
                    break
                unreadable: list[UnreadableError] = []
                records = await self._ledger.get_many(ids, unreadable=unreadable)
                for error in unreadable:
                    await self.quarantine.put_error(error)
                async with self._db.transaction() as tx:
                    await upsert_records(tx, records)
                self.generation += 1
                total += len(records)
                start += _INDEX_CHUNK
        await self.refresh_pending_gauge()
        return total

    async def sync_once(self, *, block_ms: int | None = None) -> int:
        """Ingest at most one batch of new events; returns how many entries were read.

        With `block_ms`, first wait (up to that long) for an event after the cursor, without
        the lock: an approval's `catch_up` must not queue behind the background loop's poll.
        Entries and records that cannot be read are quarantined and passed over: the cursor
        moves past them, so one bad entry never stops the history.
        """
        if block_ms is not None:
            # Only a wake-up: what it returns is read again (and parsed) under the lock.
            await self._redis.xread({keys.EVENTS: await self.cursor()}, count=1, block=block_ms)
        async with self._lock:
            batch = await read_event_batch(
                self._redis, after=await self.cursor(), count=self._batch
            )
            if batch.last_id is not None:
                await self._commit(batch, batch.last_id)
            return len(batch.events) + len(batch.unreadable)

    async def catch_up(self, *, max_batches: int = 10_000) -> int:
        """Ingest until the stream has nothing newer (bounded by `max_batches`)."""
        total = 0
        for _ in range(max_batches):
            read = await self.sync_once()
            total += read
            if read == 0:
                break
        return total

    async def _commit(self, batch: EventBatch, last_id: str) -> None:
        for error in batch.unreadable:
            await self.quarantine.put_error(error)
        events = batch.events
        rows = [
            (
                e.stream_id,
                e.request_id,
                "" if e.from_state is None else str(e.from_state),
                str(e.to_state),
                e.actor,
                e.reason,
                e.time.timestamp(),
                e.revision,
                None if e.result is None else json.dumps(e.result, sort_keys=True),
            )
            for e in events
        ]
        ids = list(dict.fromkeys(e.request_id for e in events))
        unreadable: list[UnreadableError] = []
        records = await self._ledger.get_many(ids, unreadable=unreadable)
        for error in unreadable:
            await self.quarantine.put_error(error)
        # An unreadable record keeps its last good row; it is not "past retention".
        known = {r.request.id for r in records} | {error.ref for error in unreadable}
        async with self._db.transaction() as tx:
            await tx.executemany(
                "INSERT OR IGNORE INTO request_events (stream_id, request_id, from_state,"
                " to_state, actor, reason, at, revision, result) VALUES (?,?,?,?,?,?,?,?,?)",
                rows,
            )
            await upsert_records(tx, records)
            # A request past retention has no record any more: keep its row, move its state.
            for e in events:
                if e.request_id not in known:
                    at = e.time.timestamp()
                    await tx.execute(
                        "UPDATE requests SET state = ?, updated_at = ? WHERE id = ?"
                        " AND updated_at <= ?",
                        (str(e.to_state), at, e.request_id, at),
                    )
            await tx.execute(
                "INSERT INTO ingest_cursor (stream, last_id) VALUES (?, ?)"
                " ON CONFLICT(stream) DO UPDATE SET last_id = excluded.last_id",
                (keys.EVENTS, last_id),
            )
        self.generation += 1
        self._metrics.events_ingested.inc(len(events))
        await self.refresh_pending_gauge()

    async def refresh_pending_gauge(self) -> None:
        pending = await self._db.fetchval("SELECT count(*) FROM requests WHERE state = 'pending'")
        self._metrics.pending.set(int(pending or 0))
