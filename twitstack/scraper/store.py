"""TweetStore: tweets deduplicated by id, job watermarks, run history, retention, queries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twitstack.scraper.db import Connection, Row, transaction
from twitstack.scraper.models import ScrapedTweet
from twitstack.scraper.outbox import OutboxMessage, insert_messages

_COLUMNS = (
    "id, author_id, author_username, text, created_at, lang, reply_count, retweet_count, "
    "like_count, quote_count, view_count, conversation_id, in_reply_to_id, "
    "in_reply_to_user_id, quoted_id, quoted_author_username, retweeted_id, raw, job, "
    "first_run_id, first_seen, last_seen"
)
_UPSERT = f"""
INSERT INTO tweets ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (id) DO UPDATE SET
    reply_count = excluded.reply_count, retweet_count = excluded.retweet_count,
    like_count = excluded.like_count, quote_count = excluded.quote_count,
    view_count = COALESCE(excluded.view_count, tweets.view_count),
    quoted_author_username = COALESCE(excluded.quoted_author_username,
                                      tweets.quoted_author_username),
    text = excluded.text, raw = excluded.raw,
    last_seen = MAX(tweets.last_seen, excluded.last_seen), seen_count = tweets.seen_count + 1,
    deleted_at = NULL
"""
_EXPORT_COLUMNS = (
    "id", "author_id", "author_username", "text", "created_at", "lang", "reply_count",
    "retweet_count", "like_count", "quote_count", "view_count", "conversation_id",
    "in_reply_to_id", "in_reply_to_user_id", "quoted_id", "quoted_author_username",
    "retweeted_id", "job", "first_run_id", "first_seen", "last_seen", "seen_count", "deleted_at",
)  # fmt: skip
# One encoder for every row: json.dumps(**kwargs) would build a new one per tweet.
_encode_raw = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_MAX_IN_PARAMS = 900  # SQLite's default limit on host parameters is 999
# Called with a batch's new tweets inside its transaction; returns the drafts to commit with it.
DraftMaker = Callable[[list[ScrapedTweet]], Sequence[OutboxMessage]]


@dataclass(frozen=True, slots=True)
class UpsertResult:
    new: list[ScrapedTweet]
    duplicates: int
    drafts: int = 0  # outbox messages committed with the batch


@dataclass(frozen=True, slots=True)
class JobState:
    name: str
    watermark: str | None
    last_run_id: int
    last_success: float | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    job: str
    run_id: int
    started_at: float
    finished_at: float | None
    status: str  # running | ok | failed | crashed
    fetched: int
    new: int
    duplicates: int
    error: str | None
    archive_key: str | None


def _row_values(t: ScrapedTweet, job: str, run_id: int, now: float) -> tuple[Any, ...]:
    return (
        t.id, t.author_id, t.author_username, t.text, t.created_at.isoformat(), t.lang,
        t.reply_count, t.retweet_count, t.like_count, t.quote_count, t.view_count,
        t.conversation_id, t.in_reply_to_id, t.in_reply_to_user_id, t.quoted_id,
        t.quoted_author_username, t.retweeted_id, _encode_raw(t.raw), job, run_id, now, now,
    )  # fmt: skip


class TweetStore:
    """All scraper state in one SQLite database (the connection is opened by the caller)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def connection(self) -> Connection:
        """The database connection, for parts sharing the store's file (the drafts outbox)."""
        return self._conn

    # tweets ---------------------------------------------------------------------------------

    async def upsert(
        self,
        tweets: Sequence[ScrapedTweet],
        *,
        job: str,
        run_id: int,
        now: float,
        drafts: DraftMaker | None = None,
    ) -> UpsertResult:
        """Store a batch in one transaction; existing ids only get counts and last_seen.

        `drafts` sees the batch's new tweets inside the transaction; the outbox messages it
        returns commit (or roll back) together with the tweets.
        """
        unique = list({t.id: t for t in tweets}.values())
        if not unique:
            return UpsertResult([], len(tweets))
        async with transaction(self._conn) as conn:
            existing = await self._existing_ids(conn, [t.id for t in unique])
            await conn.executemany(_UPSERT, [_row_values(t, job, run_id, now) for t in unique])
            new = [t for t in unique if t.id not in existing]
            messages = drafts(new) if drafts is not None and new else ()
            if messages:
                await insert_messages(conn, messages, now)
        return UpsertResult(new, len(tweets) - len(new), len(messages))

    async def _existing_ids(self, conn: Connection, ids: list[int]) -> set[int]:
        found: set[int] = set()
        for start in range(0, len(ids), _MAX_IN_PARAMS):
            chunk = ids[start : start + _MAX_IN_PARAMS]
            marks = ",".join("?" * len(chunk))
            async with conn.execute(f"SELECT id FROM tweets WHERE id IN ({marks})", chunk) as cur:
                found.update(int(row[0]) for row in await cur.fetchall())
        return found

    async def mark_gone(self, ids: Sequence[int], *, now: float) -> int:
        """X says these tweets are gone (deleted, or never existed): stored ones get
        `deleted_at`, which a later sighting clears. Returns how many stored rows were marked."""
        if not ids:
            return 0
        async with transaction(self._conn) as conn:
            cur = await conn.executemany(
                "UPDATE tweets SET deleted_at = COALESCE(deleted_at, ?) WHERE id = ?",
                [(now, i) for i in ids],
            )
            marked = cur.rowcount
        return int(marked)

    async def count(self) -> int:
        async with self._conn.execute("SELECT COUNT(*) FROM tweets") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def run_tweets(self, job: str, run_id: int) -> list[dict[str, Any]]:
        """The tweets first stored by one run, by id: exactly that run's archive content."""
        sql = f"SELECT {', '.join(_EXPORT_COLUMNS)}, raw FROM tweets "
        sql += "WHERE job = ? AND first_run_id = ? ORDER BY id"
        async with self._conn.execute(sql, (job, run_id)) as cur:
            return [_export_row(row, with_raw=True) for row in await cur.fetchall()]

    async def search(
        self,
        *,
        text: str | None = None,
        author: str | None = None,
        job: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Stored tweets, newest first, filtered by substring, author, job and creation time."""
        where, args = _filters(text=text, author=author, job=job, since=since)
        sql = f"SELECT {', '.join(_EXPORT_COLUMNS)} FROM tweets {where} ORDER BY id DESC LIMIT ?"
        async with self._conn.execute(sql, (*args, limit)) as cur:
            return [_export_row(row, with_raw=False) for row in await cur.fetchall()]

    async def export(
        self, *, job: str | None = None, with_raw: bool = True, chunk: int = 1000
    ) -> AsyncIterator[dict[str, Any]]:
        """Every stored tweet (of one job), oldest first, read in keyset-paged chunks."""
        after = -1
        cols = ", ".join(_EXPORT_COLUMNS) + (", raw" if with_raw else "")
        while True:
            where, args = _filters(job=job)
            where = f"{where} {'AND' if where else 'WHERE'} id > ?"
            sql = f"SELECT {cols} FROM tweets {where} ORDER BY id LIMIT ?"
            async with self._conn.execute(sql, (*args, after, chunk)) as cur:
                rows = list(await cur.fetchall())
            if not rows:
                return
            for row in rows:
                yield _export_row(row, with_raw=with_raw)
            after = int(rows[-1]["id"])

    async def purge_older_than(self, cutoff: float) -> int:
        """Retention: drop tweets not seen since `cutoff` and finished runs older than it."""
        async with transaction(self._conn) as conn:
            cur = await conn.execute("DELETE FROM tweets WHERE last_seen < ?", (cutoff,))
            deleted = cur.rowcount
            await conn.execute(
                "DELETE FROM runs WHERE started_at < ? AND status != 'running'", (cutoff,)
            )
        return int(deleted)

    # jobs and runs --------------------------------------------------------------------------

    async def job_state(self, name: str) -> JobState:
        async with self._conn.execute("SELECT * FROM jobs WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return JobState(name, None, 0, None)
        return JobState(name, row["watermark"], int(row["last_run_id"]), row["last_success"])

    async def last_fetch(self, job: str) -> float | None:
        """When a run of `job` last finished having fetched any tweet."""
        sql = "SELECT MAX(finished_at) FROM runs WHERE job = ? AND fetched > 0"
        async with self._conn.execute(sql, (job,)) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def begin_run(self, job: str, *, now: float) -> int:
        """Allocate the job's next run id and record the run as running."""
        async with transaction(self._conn) as conn:
            await conn.execute("INSERT OR IGNORE INTO jobs (name) VALUES (?)", (job,))
            await conn.execute(
                "UPDATE jobs SET last_run_id = last_run_id + 1 WHERE name = ?", (job,)
            )
            async with conn.execute("SELECT last_run_id FROM jobs WHERE name = ?", (job,)) as cur:
                row = await cur.fetchone()
            run_id = int(row[0]) if row else 1
            await conn.execute(
                "INSERT INTO runs (job, run_id, started_at, status) VALUES (?, ?, ?, 'running')",
                (job, run_id, now),
            )
        return run_id

    async def finish_run(
        self,
        job: str,
        run_id: int,
        *,
        now: float,
        status: str,
        fetched: int,
        new: int,
        duplicates: int,
        error: str | None = None,
        watermark: str | None = None,
    ) -> None:
        """Close a run; a watermark (saved only for complete runs) moves in the same commit."""
        async with transaction(self._conn) as conn:
            await conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, fetched = ?, new = ?, "
                "duplicates = ?, error = ? WHERE job = ? AND run_id = ?",
                (now, status, fetched, new, duplicates, error, job, run_id),
            )
            if status == "ok":
                await conn.execute(
                    "UPDATE jobs SET watermark = COALESCE(?, watermark), last_success = ? "
                    "WHERE name = ?",
                    (watermark, now, job),
                )

    async def mark_crashed_runs(self, job: str, *, now: float) -> list[int]:
        """Runs left 'running' by a dead holder of the job's lease become 'crashed'."""
        async with transaction(self._conn) as conn:
            async with conn.execute(
                "SELECT run_id FROM runs WHERE job = ? AND status = 'running'", (job,)
            ) as cur:
                ids = [int(r[0]) for r in await cur.fetchall()]
            for run_id in ids:
                await conn.execute(
                    "UPDATE runs SET status = 'crashed', finished_at = ?, "
                    "new = (SELECT COUNT(*) FROM tweets WHERE job = ? AND first_run_id = ?) "
                    "WHERE job = ? AND run_id = ?",
                    (now, job, run_id, job, run_id),
                )
        return ids

    async def unarchived_runs(self, job: str) -> list[RunRecord]:
        """Finished runs whose new tweets are not yet in the archive."""
        sql = "SELECT * FROM runs WHERE job = ? AND status != 'running' AND archive_key IS NULL "
        sql += "AND new > 0 ORDER BY run_id"
        async with self._conn.execute(sql, (job,)) as cur:
            return [_run(row) for row in await cur.fetchall()]

    async def mark_archived(self, job: str, run_id: int, key: str) -> None:
        await self._conn.execute(
            "UPDATE runs SET archive_key = ? WHERE job = ? AND run_id = ?", (key, job, run_id)
        )

    async def runs(self, job: str, *, limit: int = 20) -> list[RunRecord]:
        sql = "SELECT * FROM runs WHERE job = ? ORDER BY run_id DESC LIMIT ?"
        async with self._conn.execute(sql, (job, limit)) as cur:
            return [_run(row) for row in await cur.fetchall()]


def _filters(
    *,
    text: str | None = None,
    author: str | None = None,
    job: str | None = None,
    since: datetime | None = None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if text:
        clauses.append("text LIKE ? ESCAPE '\\'")
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args.append(f"%{escaped}%")
    if author:
        clauses.append("author_username = ? COLLATE NOCASE")
        args.append(author.lstrip("@"))
    if job:
        clauses.append("job = ?")
        args.append(job)
    if since:
        clauses.append("created_at >= ?")
        args.append(since.isoformat())
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


def _export_row(row: Row, *, with_raw: bool) -> dict[str, Any]:
    out = {col: row[col] for col in _EXPORT_COLUMNS}
    # Ids are strings in exports: JavaScript readers lose precision on 64-bit integers.
    for col in ("id", "author_id", "conversation_id", "in_reply_to_id", "in_reply_to_user_id",
                "quoted_id", "retweeted_id"):  # fmt: skip
        if out[col] is not None:
            out[col] = str(out[col])
    if with_raw:
        out["raw"] = json.loads(row["raw"])
    return out


def _run(row: Row) -> RunRecord:
    return RunRecord(
        job=row["job"],
        run_id=int(row["run_id"]),
        started_at=float(row["started_at"]),
        finished_at=row["finished_at"],
        status=row["status"],
        fetched=int(row["fetched"]),
        new=int(row["new"]),
        duplicates=int(row["duplicates"]),
        error=row["error"],
        archive_key=row["archive_key"],
    )
