"""A Redis lease per job, so replicas never run one job at the same time."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from redis.asyncio import Redis

# Compare-and-act: only the token's owner may extend or drop the lease.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_key(job: str) -> str:
    return f"twitstack:scraper:lease:{job}"


class LeaseLostError(Exception):
    """The lease expired or was taken over while its holder was still working."""


class JobLease:
    """SET NX PX with a random token; renewed at a third of its TTL; released by token.

    If the holder dies the key simply expires after `ttl_s`, and the next replica takes it.
    """

    def __init__(self, redis: Redis, job: str, *, ttl_s: float, holder: str = "") -> None:
        self._redis = redis
        self.key = lease_key(job)
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = f"{holder}:{secrets.token_hex(8)}"

    async def acquire(self) -> bool:
        return bool(await self._redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        return bool(await self._redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    async def release(self) -> bool:
        return bool(await self._redis.eval(_RELEASE, 1, self.key, self.token))

    async def holder(self) -> str | None:
        value = await self._redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value


@contextmanager
def _unwrap_single() -> Iterator[None]:
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


@asynccontextmanager
async def hold_lease(lease: JobLease) -> AsyncIterator[bool]:
    """Yield whether the lease was won; while held, renew it, and cancel the body if lost."""
    if not await lease.acquire():
        yield False
        return
    lost = False
    try:
        # The body runs in this task, inside the task group: unwrap its lone error so callers
        # see the exception they raised rather than an ExceptionGroup.
        with _unwrap_single():
            async with anyio.create_task_group() as tg:

                async def keep_renewing() -> None:
                    nonlocal lost
                    while True:
                        await anyio.sleep(lease.ttl_ms / 3000)
                        if not await lease.renew():
                            # Someone else holds the job now: stop working on it at once.
                            lost = True
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(keep_renewing)
                try:
                    yield True
                finally:
                    tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await lease.release()
    if lost:
        raise LeaseLostError(f"lost the lease {lease.key} while running")
