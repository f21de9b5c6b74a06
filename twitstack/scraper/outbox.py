"""The drafts outbox: drafts committed with the tweets they answer, pushed, then deleted.

A draft is written to `draft_outbox` in the same transaction as its source tweet, so a crash
after that commit cannot lose it (the tweet is no longer "new" next run, so it would never be
drafted again). `DraftOutbox.deliver` RPUSHes the stored bytes onto `write_queue` and only then
deletes the rows. A crash between push and delete re-pushes the same bytes, hence the same
request id, which the writer's ledger deduplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twitstack.scraper.db import Connection, transaction
from twitstack.writes.keys import WRITE_QUEUE

if TYPE_CHECKING:
    from redis.asyncio import Redis

_DELIVER_CHUNK = 200


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One draft as it waits in the outbox: its wire bytes and what the metrics need."""

    request_id: str
    job: str
    run_id: int
    message: bytes  # the encoded write request, pushed verbatim
    refusable: bool


async def insert_messages(conn: Connection, messages: Sequence[OutboxMessage], now: float) -> None:
    """Add drafts to the outbox; the caller's transaction makes them atomic with its tweets."""
    await conn.executemany(
        "INSERT OR IGNORE INTO draft_outbox "
        "(request_id, job, run_id, message, refusable, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(m.request_id, m.job, m.run_id, m.message, int(m.refusable), now) for m in messages],
    )


class DraftOutbox:
    """Reads and drains the outbox (the connection and Redis client belong to the caller)."""

    def __init__(
        self,
        conn: Connection,
        redis: Redis,
        *,
        on_pushed: Callable[[OutboxMessage], None] | None = None,
    ) -> None:
        self._conn = conn
        self._redis = redis
        self._on_pushed = on_pushed

    async def pending(self, job: str | None = None) -> list[OutboxMessage]:
        """Every draft not yet pushed (of one job), oldest first."""
        return [m for _, m in await self._read(job, limit=-1)]

    async def deliver(self, job: str | None = None) -> int:
        """Push the waiting drafts (of one job) onto write_queue, oldest first; the number pushed.

        Pass `job` while other jobs may be mid-run on this database: their freshly committed
        drafts are theirs to push (pushing them twice is harmless, but noisy).
        """
        pushed = 0
        while rows := await self._read(job, limit=_DELIVER_CHUNK):
            async with self._redis.pipeline(transaction=True) as pipe:
                for _, message in rows:
                    pipe.rpush(WRITE_QUEUE, message.message)
                await pipe.execute()
            # Deleted only once Redis has them: dying here re-pushes identical bytes next time.
            await self._forget([seq for seq, _ in rows])
            for _, message in rows:
                if self._on_pushed is not None:
                    self._on_pushed(message)
            pushed += len(rows)
        return pushed

    async def _forget(self, seqs: list[int]) -> None:
        async with transaction(self._conn) as conn:
            marks = ",".join("?" * len(seqs))
            await conn.execute(f"DELETE FROM draft_outbox WHERE seq IN ({marks})", seqs)

    async def _read(self, job: str | None, *, limit: int) -> list[tuple[int, OutboxMessage]]:
        sql = "SELECT seq, request_id, job, run_id, message, refusable FROM draft_outbox"
        args: list[object] = []
        if job is not None:
            sql += " WHERE job = ?"
            args.append(job)
        sql += " ORDER BY seq LIMIT ?"
        async with self._conn.execute(sql, (*args, limit)) as cur:
            rows = await cur.fetchall()
        return [
            (
                int(row["seq"]),
                OutboxMessage(
                    request_id=row["request_id"],
                    job=row["job"],
                    run_id=int(row["run_id"]),
                    message=bytes(row["message"]),
                    refusable=bool(row["refusable"]),
                ),
            )
            for row in rows
        ]
