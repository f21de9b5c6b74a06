"""Reading the request ledger: one record, many, a state's counts and pages, the event stream."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from twitstack.core.logging import get_logger
from twitstack.writes import keys, ledger_index
from twitstack.writes.errors import UnreadableError
from twitstack.writes.events import STREAM_START, LedgerEvent, read_events
from twitstack.writes.ledger_types import (
    LedgerRecord,
    RecordPage,
    StoredRecord,
    as_text,
    parse_record,
)
from twitstack.writes.models import ModerationStatus
from twitstack.writes.quarantine import Quarantine

_log = get_logger("twitstack.writes.ledger")


class LedgerReads:
    """A base of RequestLedger: its read side, which never changes a record.

    A record that cannot be parsed is raised as UnreadableError when asked for by id, and
    left out of lists (see get_many).
    """

    _redis: Redis
    _quarantine: Quarantine | None

    async def get(self, request_id: str) -> LedgerRecord | None:
        """The request as the ledger holds it now, or None if unknown (or past retention).

        Raises UnreadableError if the stored record cannot be parsed.
        """
        fields = await self._fields(request_id)
        return parse_record(fields, request_id=request_id) if fields else None

    async def _fields(self, request_id: str) -> dict[bytes | str, bytes | str]:
        try:
            fields: dict[bytes | str, bytes | str] = await self._redis.hgetall(
                keys.request(request_id)
            )
        except ResponseError as exc:
            # A key of the wrong type (anyone can SET it) is unreadable data, not an outage.
            if not str(exc).startswith("WRONGTYPE"):
                raise
            raise UnreadableError("record", request_id, "wrong_type", str(exc)[:300]) from None
        return fields

    async def read(self, request_id: str) -> StoredRecord | None:
        """The record and the exact stored `request` bytes, for a later byte compare-and-set."""
        fields = await self._fields(request_id)
        if not fields:
            return None
        raw = {as_text(key): value for key, value in fields.items()}.get("request")
        if raw is None:
            return None
        raw_bytes = raw if isinstance(raw, bytes) else str(raw).encode("utf-8")
        return StoredRecord(parse_record(fields, request_id=request_id), raw_bytes)

    async def get_many(
        self, request_ids: Collection[str], *, unreadable: list[UnreadableError] | None = None
    ) -> list[LedgerRecord]:
        """Records for the ids that still exist, in the order given.

        A record that cannot be parsed is left out, never raised: it is appended to
        `unreadable` for the caller, else quarantined (if this ledger was given a quarantine),
        else logged.
        """
        ids = list(request_ids)
        async with self._redis.pipeline(transaction=False) as pipe:
            for request_id in ids:
                pipe.hgetall(keys.request(request_id))
            # A key of the wrong type (anyone can SET it) answers WRONGTYPE for that id only.
            rows: list[Any] = await pipe.execute(raise_on_error=False)
        records: list[LedgerRecord] = []
        for request_id, row in zip(ids, rows, strict=True):
            if not row:
                continue
            try:
                if isinstance(row, ResponseError):
                    raise UnreadableError("record", request_id, "wrong_type", str(row)[:300])
                records.append(parse_record(row, request_id=request_id))
            except UnreadableError as exc:
                if unreadable is not None:
                    unreadable.append(exc)
                elif self._quarantine is not None:
                    await self._quarantine.put_error(exc)
                else:
                    _log.warning("ledger.record_unreadable", request_id=exc.ref, reason=exc.reason)
        return records

    async def count(self, state: ModerationStatus) -> int:
        """How many requests are in `state`."""
        return await ledger_index.count(self._redis, state)

    async def counts(self) -> dict[ModerationStatus, int]:
        """Requests per state, every state listed."""
        return await ledger_index.counts(self._redis)

    async def list_records(
        self,
        state: ModerationStatus,
        *,
        offset: int = 0,
        limit: int = 50,
        newest_first: bool = True,
    ) -> list[LedgerRecord]:
        """Records in `state` by creation time, skipping `offset`."""
        ids = await ledger_index.list_ids(
            self._redis, state, offset=offset, limit=limit, newest_first=newest_first
        )
        return await self.get_many(ids)

    async def page(
        self,
        state: ModerationStatus,
        *,
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = True,
    ) -> RecordPage:
        """A page of records in `state`; pass its cursors back to move forward or back."""
        ids = await ledger_index.page_ids(
            self._redis, state, limit=limit, cursor=cursor, newest_first=newest_first
        )
        records = await self.get_many(ids.ids)
        return RecordPage(records, ids.next_cursor, ids.prev_cursor)

    async def read_events(
        self, *, after: str = STREAM_START, count: int = 100, block_ms: int | None = None
    ) -> list[LedgerEvent]:
        """State-change events newer than stream id `after` (see `events.read_events`)."""
        return await read_events(self._redis, after=after, count=count, block_ms=block_ms)
