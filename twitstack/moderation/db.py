"""The moderation SQLite store: the only aiosqlite import, WAL + synchronous=FULL, migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from twitstack.moderation.migrations import MIGRATIONS

Row = sqlite3.Row
Params = Sequence[Any] | dict[str, Any]
IntegrityError = sqlite3.IntegrityError
DatabaseError = sqlite3.DatabaseError


class Transaction:
    """Statements run inside one BEGIN IMMEDIATE ... COMMIT on the writer connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        cursor = await self._conn.execute(sql, params)
        count = cursor.rowcount
        await cursor.close()
        return count

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT; returns the new rowid."""
        cursor = await self._conn.execute(sql, params)
        rowid = cursor.lastrowid
        await cursor.close()
        return int(rowid or 0)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for each parameter set."""
        await self._conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """First row of a query inside the transaction, or None."""
        async with self._conn.execute(sql, params) as cursor:
            row: Row | None = await cursor.fetchone()
            return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a query inside the transaction."""
        async with self._conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())


class Database:
    """Two connections over one WAL file: reads never wait behind a write transaction."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        # One writer at a time: aiosqlite would otherwise interleave two coroutines'
        # statements inside the same SQLite transaction.
        self._write_lock = anyio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A write transaction: committed on exit, rolled back on any exception."""
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._writer)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._writer.rollback()
                raise
            with anyio.CancelScope(shield=True):
                await self._writer.commit()

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One write statement in its own transaction; returns the rows changed."""
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """First row of a read query, or None (callers put LIMITs where many rows could match)."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a read query."""
        # One hop to aiosqlite's thread instead of three (execute, fetch, close): under load
        # each hop is a wake-up of the event loop, and page views are mostly these reads.
        return list(await self._reader.execute_fetchall(sql, params))

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        """First column of the first row, or None."""
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def pragma(self, name: str) -> Any:
        """Read one PRAGMA on the writer connection (used by boot and readiness checks)."""
        async with self._writer.execute(f"PRAGMA {name}") as cursor:
            row = await cursor.fetchone()
            return None if row is None else row[0]

    async def ping(self) -> bool:
        """True when both connections answer a trivial query."""
        try:
            await self.fetchval("SELECT 1")
            await self.pragma("user_version")
        except (sqlite3.Error, ValueError):
            return False
        return True


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    await conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed approval or audit row must survive a power loss, not only a crash.
    await conn.execute("PRAGMA synchronous=FULL")
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA busy_timeout=5000")
    return conn


async def _migrate(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    for number, script in enumerate(MIGRATIONS, start=1):
        if number <= version:
            continue
        # executescript commits on its own, so the version bump rides in the same script.
        await conn.executescript(
            f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={number};\nCOMMIT;"
        )
        version = number
    return version


@asynccontextmanager
async def open_database(path: Path) -> AsyncIterator[Database]:
    """Open (creating and migrating if needed) the store at `path`; closes it on exit."""
    writer = await _connect(path)
    reader: aiosqlite.Connection | None = None
    try:
        await _migrate(writer)
        mode = await (await writer.execute("PRAGMA journal_mode")).fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise DatabaseError(f"expected journal_mode=wal on {path}, found {mode}")
        reader = await _connect(path)
        await reader.execute("PRAGMA query_only=ON")
        yield Database(writer, reader)
    finally:
        with anyio.CancelScope(shield=True):
            if reader is not None:
                await reader.close()
            await writer.close()
