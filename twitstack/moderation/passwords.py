"""Password policy (length, common-password list) and argon2id hashing with rehash on login."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import TypeVar

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")

MIN_LENGTH = 8
MAX_LENGTH = 128


class PasswordPolicyError(ValueError):
    """A new password does not meet the policy; the message says which rule and why."""


@cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower-cased."""
    text = files("twitstack.moderation").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line and not line.startswith("#")
    )


def check_policy(password: str, *, username: str = "") -> None:
    """Raise PasswordPolicyError unless `password` is acceptable (no composition rules)."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(
            f"password must have at least {MIN_LENGTH} characters, got {len(password)}"
        )
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(
            f"password must have at most {MAX_LENGTH} characters, got {len(password)}"
        )
    lowered = password.lower()
    if lowered in common_passwords():
        raise PasswordPolicyError("password is on the list of common passwords; choose another")
    if username and lowered == username.lower():
        raise PasswordPolicyError("password must not be the same as the username")


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of checking a password: whether it matched and, if so, a fresh hash to store."""

    ok: bool
    new_hash: str | None = None


class PasswordService:
    """argon2id hashing off the event loop, at most `concurrency` at a time.

    Each hash or verification holds 64 MiB (argon2's memory cost) for its duration; without
    the bound a burst would run as many at once as the thread pool has threads (40), about
    2.5 GiB. `verifications` counts password checks and `peak_concurrency` the most that ever
    ran at once, so throttling and the bound can be proven from outside.
    """

    def __init__(self, hasher: PasswordHasher | None = None, *, concurrency: int = 2) -> None:
        # argon2-cffi's defaults are argon2id, t=3, m=64 MiB, p=4 (RFC 9106 low-memory profile).
        self._hasher = hasher or PasswordHasher()
        self._limit = anyio.CapacityLimiter(concurrency)
        self.verifications = 0
        self.peak_concurrency = 0
        self._running = 0
        # A fixed hash to verify against for unknown users, so timing does not reveal them.
        self._dummy_hash = self._hasher.hash("twitstack-dummy-password")

    async def _run(self, work: Callable[[], T]) -> T:
        async with self._limit:
            self._running += 1
            self.peak_concurrency = max(self.peak_concurrency, self._running)
            try:
                return await anyio.to_thread.run_sync(work)
            finally:
                self._running -= 1

    async def hash(self, password: str) -> str:
        """A new argon2id hash of `password`."""
        return await self._run(lambda: self._hasher.hash(password))

    async def verify(self, stored_hash: str | None, password: str) -> VerifyResult:
        """Check `password` against `stored_hash` (None = unknown user, always fails)."""
        self.verifications += 1
        target = stored_hash or self._dummy_hash

        def check() -> VerifyResult:
            try:
                self._hasher.verify(target, password)
            except (VerificationError, InvalidHashError):
                return VerifyResult(ok=False)
            if stored_hash is None:
                return VerifyResult(ok=False)
            if self._hasher.check_needs_rehash(stored_hash):
                return VerifyResult(ok=True, new_hash=self._hasher.hash(password))
            return VerifyResult(ok=True)

        return await self._run(check)
