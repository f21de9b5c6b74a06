"""Moderation users: accounts with a role, a password hash and a disabled flag."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from twitstack.moderation.db import Database, IntegrityError, Row, Transaction
from twitstack.moderation.passwords import PasswordService, check_policy
from twitstack.moderation.roles import Role

Clock = Callable[[], float]


class UserError(ValueError):
    """A user operation was refused; the message says why."""


@dataclass(frozen=True)
class User:
    """A moderation user as stored (the hash stays inside this module and sessions)."""

    id: int
    username: str
    role: Role
    disabled: bool
    created_at: float

    @classmethod
    def from_row(cls, row: Row | Mapping[str, Any]) -> User:
        return cls(
            id=int(row["id"]),
            username=str(row["username"]),
            role=Role.parse(row["role"]),
            disabled=bool(row["disabled"]),
            created_at=float(row["created_at"]),
        )


_COLUMNS = "id, username, role, disabled, created_at"


def check_username(username: str) -> str:
    """Normalise and validate a username (letters, digits, . _ -; 1-64 characters)."""
    name = username.strip()
    if not 1 <= len(name) <= 64:
        raise UserError(f"username must have 1 to 64 characters, got {len(name)}")
    if not all(c.isalnum() or c in "._-" for c in name):
        raise UserError("username may only contain letters, digits, '.', '_' and '-'")
    return name


class UserStore:
    """Create, find and change users; role changes and disabling end the user's sessions."""

    def __init__(self, db: Database, passwords: PasswordService, clock: Clock) -> None:
        self._db = db
        self._passwords = passwords
        self._clock = clock

    async def create(self, username: str, password: str, role: Role) -> User:
        """Add a user; UserError if the name is taken or invalid, PasswordPolicyError on weak."""
        name = check_username(username)
        check_policy(password, username=name)
        password_hash = await self._passwords.hash(password)
        try:
            async with self._db.transaction() as tx:
                user_id = await tx.insert(
                    "INSERT INTO users (username, password_hash, role, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (name, password_hash, role.label, self._clock()),
                )
        except IntegrityError:
            raise UserError(f"a user named {name!r} already exists") from None
        user = await self.get(user_id)
        assert user is not None  # just inserted
        return user

    async def get(self, user_id: int) -> User | None:
        row = await self._db.fetchone(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return None if row is None else User.from_row(row)

    async def by_name(self, username: str) -> User | None:
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS} FROM users WHERE username = ?", (username.strip(),)
        )
        return None if row is None else User.from_row(row)

    async def password_hash(self, username: str) -> tuple[User, str] | None:
        """The user and their stored hash, for login only."""
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = ?", (username.strip(),)
        )
        return None if row is None else (User.from_row(row), str(row["password_hash"]))

    async def list(self) -> list[User]:
        rows = await self._db.fetchall(f"SELECT {_COLUMNS} FROM users ORDER BY username")
        return [User.from_row(r) for r in rows]

    async def count(self) -> int:
        return int(await self._db.fetchval("SELECT count(*) FROM users"))

    async def _require(self, tx: Transaction, user_id: int) -> None:
        if await tx.fetchone("SELECT 1 FROM users WHERE id = ?", (user_id,)) is None:
            raise UserError(f"no user with id {user_id}")

    async def set_role(self, user_id: int, role: Role) -> None:
        """Change a role and end the user's sessions so the new role applies at once."""
        async with self._db.transaction() as tx:
            await self._require(tx, user_id)
            await tx.execute("UPDATE users SET role = ? WHERE id = ?", (role.label, user_id))
            await tx.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    async def set_disabled(self, user_id: int, disabled: bool) -> None:
        """Disable (ending every session) or re-enable a user."""
        async with self._db.transaction() as tx:
            await self._require(tx, user_id)
            await tx.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user_id))
            if disabled:
                await tx.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    async def set_password(self, user_id: int, password: str) -> None:
        """Set a new password (policy-checked) and end the user's sessions."""
        user = await self.get(user_id)
        if user is None:
            raise UserError(f"no user with id {user_id}")
        check_policy(password, username=user.username)
        password_hash = await self._passwords.hash(password)
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
            )
            await tx.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    async def store_rehash(self, user_id: int, password_hash: str) -> None:
        """Replace a hash made with old argon2 parameters (same password)."""
        await self._db.execute(
            "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
        )
