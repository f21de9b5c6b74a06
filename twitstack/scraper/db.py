"""The scraper's SQLite database: the only aiosqlite import (WAL, pragmas, migrations)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import anyio

Connection = aiosqlite.Connection
Row = aiosqlite.Row

_MIGRATIONS: tuple[str, ...] = (
    # 1: tweets, job state, run history
    """
    CREATE TABLE tweets (
        id INTEGER PRIMARY KEY,
        author_id INTEGER NOT NULL,
        author_username TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at TEXT NOT NULL,
        lang TEXT NOT NULL,
        reply_count INTEGER NOT NULL,
        retweet_count INTEGER NOT NULL,
        like_count INTEGER NOT NULL,
        quote_count INTEGER NOT NULL,
        view_count INTEGER,
        conversation_id INTEGER NOT NULL,
        in_reply_to_id INTEGER,
        in_reply_to_user_id INTEGER,
        quoted_id INTEGER,
        raw TEXT NOT NULL,
        job TEXT NOT NULL,
        first_run_id INTEGER NOT NULL,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        seen_count INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX tweets_by_run ON tweets (job, first_run_id);
    CREATE INDEX tweets_by_author ON tweets (author_username COLLATE NOCASE);
    CREATE INDEX tweets_by_last_seen ON tweets (last_seen);
    CREATE TABLE jobs (
        name TEXT PRIMARY KEY,
        watermark TEXT,
        last_run_id INTEGER NOT NULL DEFAULT 0,
        last_success REAL
    );
    CREATE TABLE runs (
        job TEXT NOT NULL,
        run_id INTEGER NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        status TEXT NOT NULL,
        fetched INTEGER NOT NULL DEFAULT 0,
        new INTEGER NOT NULL DEFAULT 0,
        duplicates INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        archive_key TEXT,
        PRIMARY KEY (job, run_id)
    );
    """,
    # 2: the drafts outbox, written in the transaction that stores the drafted tweets
    """
    CREATE TABLE draft_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL UNIQUE,
        job TEXT NOT NULL,
        run_id INTEGER NOT NULL,
        message BLOB NOT NULL,
        refusable INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX draft_outbox_by_job ON draft_outbox (job, seq);
    """,
    # 3: the quoted author; which tweet a retweet repeats; when a by-id job found a tweet gone
    """
    ALTER TABLE tweets ADD COLUMN quoted_author_username TEXT;
    ALTER TABLE tweets ADD COLUMN retweeted_id INTEGER;
    ALTER TABLE tweets ADD COLUMN deleted_at REAL;
    """,
)


async def migrate(conn: Connection) -> int:
    """Apply pending migrations (PRAGMA user_version counts them); returns the version."""
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
        # executescript commits first; the version bump rides in the same script.
        await conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    return len(_MIGRATIONS)


@asynccontextmanager
async def open_database(path: Path) -> AsyncIterator[Connection]:
    """Open (creating and migrating) the database at `path`; closed on exit."""
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = aiosqlite.Row
        # WAL lets `tweets search` read while a run writes; NORMAL is durable at checkpoints
        # and never corrupts, which is the right trade for re-fetchable data.
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA busy_timeout = 5000")
        await migrate(conn)
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def transaction(conn: Connection) -> AsyncIterator[Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error (the connection is autocommit)."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # Shielded: a cancelled run must still roll back, or the connection stays mid-transaction.
        with anyio.CancelScope(shield=True):
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
