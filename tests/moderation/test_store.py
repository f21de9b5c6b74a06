"""The SQLite store: durability settings, migrations, and the append-only audit log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.moderation.conftest import ManualClock
from twitstack.moderation.audit import AuditLog
from twitstack.moderation.db import Database, open_database
from twitstack.moderation.migrations import MIGRATIONS

pytestmark = pytest.mark.anyio


async def test_opens_in_wal_with_synchronous_full(db: Database) -> None:
    """Committed approvals must survive power loss, so FULL, in WAL mode."""
    assert await db.pragma("journal_mode") == "wal"
    assert await db.pragma("synchronous") == 2
    assert await db.pragma("user_version") == len(MIGRATIONS)


async def test_migrations_run_once_and_keep_data(tmp_path: Path) -> None:
    """Re-opening an existing store keeps its rows and does not re-run migrations."""
    path = tmp_path / "m.sqlite3"
    async with open_database(path) as first:
        await first.execute(
            "INSERT INTO users (username, password_hash, role, created_at)"
            " VALUES ('a','h','viewer',1)"
        )
    async with open_database(path) as second:
        assert await second.fetchval("SELECT count(*) FROM users") == 1
        assert await second.pragma("user_version") == len(MIGRATIONS)


async def test_failed_transaction_rolls_back(db: Database) -> None:
    """An exception inside a transaction leaves no partial write behind."""

    async def insert_then_fail() -> None:
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO users (username, password_hash, role, created_at)"
                " VALUES ('b','h','viewer',1)"
            )
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await insert_then_fail()
    assert await db.fetchval("SELECT count(*) FROM users") == 0


async def test_audit_log_refuses_update_and_delete(db: Database, clock: ManualClock) -> None:
    """Triggers make the audit log append-only, even for direct SQL."""
    audit = AuditLog(db, clock)
    await audit.record("alice", "login", "alice", {"password": "hunter22", "n": 1}, ip="1.2.3.4")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await db.execute("UPDATE audit_log SET actor = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await db.execute("DELETE FROM audit_log")
    [entry] = await audit.page(limit=10, offset=0)
    assert (entry.actor, entry.action, entry.ip) == ("alice", "login", "1.2.3.4")
    assert entry.detail == {"n": 1}  # the password key was dropped before storing


async def test_audit_filters_by_action_and_actor(db: Database, clock: ManualClock) -> None:
    """The audit page can be narrowed to one action or actor, newest first."""
    audit = AuditLog(db, clock)
    for actor, action in [("a", "login"), ("b", "login"), ("a", "logout")]:
        clock.advance(1)
        await audit.record(actor, action)
    assert [e.actor for e in await audit.page(limit=10, offset=0, action="login")] == ["b", "a"]
    assert [e.action for e in await audit.page(limit=10, offset=0, actor="a")] == [
        "logout",
        "login",
    ]
    assert await audit.count(action="login") == 2
