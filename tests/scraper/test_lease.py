"""The per-job Redis lease: exclusive, token-checked, renewed, lost when taken over."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from twitstack.scraper.lease import JobLease, LeaseLostError, hold_lease

pytestmark = pytest.mark.anyio


async def test_only_the_token_holder_can_release(redis: Any) -> None:
    a = JobLease(redis, "job", ttl_s=5, holder="a")
    b = JobLease(redis, "job", ttl_s=5, holder="b")
    assert await a.acquire()
    assert not await b.acquire()
    assert not await b.release()
    assert await a.holder() == a.token
    assert await a.release()
    assert await b.acquire()


async def test_held_lease_is_renewed_past_its_ttl(redis: Any) -> None:
    """While the body runs the lease outlives its TTL; afterwards the key is gone."""
    lease = JobLease(redis, "job", ttl_s=0.3, holder="a")
    async with hold_lease(lease) as won:
        assert won
        await anyio.sleep(0.8)  # longer than the TTL: only renewal keeps the key
        assert await lease.holder() == lease.token
    assert await lease.holder() is None


async def test_body_is_cancelled_when_the_lease_is_taken_over(redis: Any) -> None:
    lease = JobLease(redis, "job", ttl_s=0.3, holder="a")

    async def work_while_stolen() -> None:
        async with hold_lease(lease):
            await redis.set(lease.key, b"someone-else")
            await anyio.sleep(10)  # cancelled by the renewer well before this ends

    with anyio.fail_after(5), pytest.raises(LeaseLostError):
        await work_while_stolen()
