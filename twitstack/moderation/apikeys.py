"""Scoped, revocable API keys: shown once, stored as SHA-256, exchanged for short-lived JWTs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from twitstack.moderation.db import Database, Row
from twitstack.moderation.roles import SCOPES

Clock = Callable[[], float]
_PREFIX = "tsk"


class ApiKeyError(ValueError):
    """An API key request was refused; the message says why."""


@dataclass(frozen=True)
class ApiKey:
    """An API key's metadata (never the key itself)."""

    id: int
    prefix: str
    name: str
    owner_id: int
    scopes: tuple[str, ...]
    created_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def from_row(cls, row: Row) -> ApiKey:
        return cls(
            id=int(row["id"]),
            prefix=str(row["prefix"]),
            name=str(row["name"]),
            owner_id=int(row["owner_id"]),
            scopes=tuple(s for s in str(row["scopes"]).split() if s),
            created_at=float(row["created_at"]),
            revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
        )


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(plaintext: str) -> str:
    """The public prefix of a key (`tsk_<prefix>_...`), or "-" when it is not key-shaped."""
    parts = plaintext.strip().split("_", 2)
    if len(parts) == 3 and parts[0] == _PREFIX and len(parts[1]) == 12 and parts[1].isalnum():
        return parts[1]
    return "-"


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Validate scope names; returns them de-duplicated in canonical order."""
    wanted = {s.strip() for s in scopes if s.strip()}
    unknown = wanted - set(SCOPES)
    if unknown:
        raise ApiKeyError(
            f"unknown scope(s) {', '.join(sorted(unknown))}; expected some of {', '.join(SCOPES)}"
        )
    if not wanted:
        raise ApiKeyError(f"at least one scope is needed, from {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in wanted)


class ApiKeyStore:
    """Create, verify, list and revoke API keys."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def create(self, owner_id: int, name: str, scopes: Iterable[str]) -> tuple[str, ApiKey]:
        """A new key; returns the plaintext (show it once) and its stored metadata."""
        clean = check_scopes(scopes)
        label = name.strip()
        if not 1 <= len(label) <= 100:
            raise ApiKeyError(f"key name must have 1 to 100 characters, got {len(label)}")
        prefix = secrets.token_hex(6)
        plaintext = f"{_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
        async with self._db.transaction() as tx:
            key_id = await tx.insert(
                "INSERT INTO api_keys (prefix, key_hash, name, owner_id, scopes, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (prefix, _digest(plaintext), label, owner_id, " ".join(clean), self._clock()),
            )
        key = await self.get(key_id)
        assert key is not None  # just inserted
        return plaintext, key

    async def get(self, key_id: int) -> ApiKey | None:
        row = await self._db.fetchone("SELECT * FROM api_keys WHERE id = ?", (key_id,))
        return None if row is None else ApiKey.from_row(row)

    async def verify(self, plaintext: str) -> ApiKey | None:
        """The active key matching `plaintext`, or None."""
        parts = plaintext.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != _PREFIX or len(plaintext) > 200:
            return None
        row = await self._db.fetchone("SELECT * FROM api_keys WHERE prefix = ?", (parts[1],))
        if row is None or not hmac.compare_digest(str(row["key_hash"]), _digest(plaintext.strip())):
            return None
        key = ApiKey.from_row(row)
        return key if key.active else None

    async def list(self) -> list[ApiKey]:
        rows = await self._db.fetchall("SELECT * FROM api_keys ORDER BY id")
        return [ApiKey.from_row(r) for r in rows]

    async def revoke(self, key_id: int) -> bool:
        """Revoke a key; tokens minted from it stop working on their next request."""
        changed = await self._db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (self._clock(), key_id),
        )
        return changed == 1
