"""Fixtures for the write-request domain tests: an async client on the private Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A bytes-mode client (as services get) on the flushed private server."""
    client = Redis.from_url(redis_url, socket_timeout=10)
    try:
        yield client
    finally:
        await client.aclose()
