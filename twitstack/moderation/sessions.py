"""Server-side sessions: random ids in the cookie, their SHA-256 in SQLite, idle/absolute expiry."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from twitstack.moderation.db import Database
from twitstack.moderation.users import User

Clock = Callable[[], float]

# Touching last_seen on every request would turn each page view into a write; a coarse
# step keeps the idle timeout accurate to within this many seconds.
_TOUCH_STEP_S = 30.0
_MAX_REMEMBERED_TOUCHES = 10_000


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session: who it belongs to and the CSRF token bound to it."""

    id_hash: str
    user: User
    csrf_token: str


class SessionStore:
    """Create, resolve and end sessions; only hashes of the ids are stored."""

    def __init__(self, db: Database, clock: Clock, *, idle_s: float, absolute_s: float) -> None:
        self._db = db
        self._clock = clock
        self._idle_s = idle_s
        self._absolute_s = absolute_s
        # id_hash -> when this process last wrote its last_seen: concurrent requests of one
        # session would otherwise each see a stale row and queue one fsync'd UPDATE apiece.
        self._touched: dict[str, float] = {}

    async def create(self, user_id: int) -> tuple[str, Session]:
        """A new session for `user_id`; returns the cookie token (shown once) and the session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()
        await self._db.execute(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen)"
            " VALUES (?, ?, ?, ?, ?)",
            (_digest(token), user_id, csrf, now, now),
        )
        session = await self.resolve(token)
        assert session is not None  # just created
        return token, session

    async def resolve(self, token: str) -> Session | None:
        """The live session for a cookie token, or None if unknown, expired or user disabled."""
        if not token or len(token) > 256:
            return None
        id_hash = _digest(token)
        row = await self._db.fetchone(
            "SELECT s.csrf_token, s.created_at, s.last_seen,"
            " u.id, u.username, u.role, u.disabled, u.created_at AS user_created"
            " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?",
            (id_hash,),
        )
        if row is None:
            return None
        now = self._clock()
        expired = (
            now - float(row["created_at"]) > self._absolute_s
            or now - float(row["last_seen"]) > self._idle_s
        )
        if expired or row["disabled"]:
            await self._db.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))
            return None
        last_seen = max(float(row["last_seen"]), self._touched.get(id_hash, 0.0))
        if now - last_seen > _TOUCH_STEP_S:
            self._remember_touch(id_hash, now)
            await self._db.execute(
                "UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (now, id_hash)
            )
        user = User.from_row(
            {
                "id": row["id"],
                "username": row["username"],
                "role": row["role"],
                "disabled": row["disabled"],
                "created_at": row["user_created"],
            }
        )
        return Session(id_hash=id_hash, user=user, csrf_token=str(row["csrf_token"]))

    def _remember_touch(self, id_hash: str, now: float) -> None:
        if len(self._touched) >= _MAX_REMEMBERED_TOUCHES:
            # Forgetting only costs one extra UPDATE for a session; keep the map bounded.
            self._touched.clear()
        self._touched[id_hash] = now

    async def end(self, id_hash: str) -> None:
        """Delete one session: its cookie is worthless from now on."""
        await self._db.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))

    async def end_all(self, user_id: int) -> None:
        """Delete every session of a user."""
        await self._db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    async def purge_expired(self) -> int:
        """Drop expired rows; returns how many went."""
        now = self._clock()
        return await self._db.execute(
            "DELETE FROM sessions WHERE created_at < ? OR last_seen < ?",
            (now - self._absolute_s, now - self._idle_s),
        )
