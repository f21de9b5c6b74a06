"""The append-only audit log: who did what to what, and when (triggers refuse UPDATE/DELETE)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from twitstack.moderation.db import Database, Row, Transaction

Clock = Callable[[], float]

# Keys whose values never go into the audit log, whatever a caller passes.
_SECRET_KEYS = frozenset({"password", "token", "api_key", "secret", "csrf_token"})


@dataclass(frozen=True)
class AuditEntry:
    """One audit row."""

    id: int
    at: float
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    ip: str

    @classmethod
    def from_row(cls, row: Row) -> AuditEntry:
        return cls(
            id=int(row["id"]),
            at=float(row["at"]),
            actor=str(row["actor"]),
            action=str(row["action"]),
            target=str(row["target"]),
            detail=json.loads(row["detail"]) if row["detail"] else {},
            ip=str(row["ip"]),
        )


class AuditLog:
    """Append and read audit rows; there is deliberately no update or delete."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self,
        actor: str,
        action: str,
        target: str = "",
        detail: Mapping[str, Any] | None = None,
        *,
        ip: str = "",
        tx: Transaction | None = None,
    ) -> None:
        """Append one row, inside `tx` when the audited change is part of a transaction."""
        clean = {k: v for k, v in (detail or {}).items() if k not in _SECRET_KEYS}
        params = (self._clock(), actor, action, target, json.dumps(clean, sort_keys=True), ip)
        sql = "INSERT INTO audit_log (at, actor, action, target, detail, ip) VALUES (?,?,?,?,?,?)"
        if tx is not None:
            await tx.execute(sql, params)
        else:
            await self._db.execute(sql, params)

    async def count(self, *, action: str | None = None) -> int:
        if action is None:
            return int(await self._db.fetchval("SELECT count(*) FROM audit_log"))
        return int(
            await self._db.fetchval("SELECT count(*) FROM audit_log WHERE action = ?", (action,))
        )

    async def page(
        self, *, limit: int, offset: int, action: str | None = None, actor: str | None = None
    ) -> list[AuditEntry]:
        """Newest first, optionally filtered by action and actor."""
        where, params = [], []
        if action:
            where.append("action = ?")
            params.append(action)
        if actor:
            where.append("actor = ?")
            params.append(actor)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self._db.fetchall(
            f"SELECT * FROM audit_log {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [AuditEntry.from_row(r) for r in rows]
