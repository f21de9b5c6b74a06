"""Start-up refuses a Redis older than the ledger's scripts need, naming its version."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from twitstack.core.errors import RedisVersionError, StartupError
from twitstack.core.redis import MIN_REDIS_VERSION, log_server_info, redis_version_tuple

pytestmark = pytest.mark.anyio


class _Info:
    """Answers INFO as a server of `version` would (only the fields start-up reads)."""

    def __init__(self, version: str) -> None:
        self.version = version

    async def info(self, section: str) -> dict[str, Any]:
        if section == "server":
            return {"redis_version": self.version, "redis_mode": "standalone"}
        return {"aof_enabled": 0}


async def test_an_older_server_fails_the_start_with_its_version() -> None:
    with pytest.raises(RedisVersionError, match=r"Redis 6\.2\.14 is too old.*7\.0") as caught:
        await log_server_info(_Info("6.2.14"))  # type: ignore[arg-type]
    assert isinstance(caught.value, StartupError)


async def test_the_minimum_and_newer_start(redis_url: str) -> None:
    assert await log_server_info(_Info("7.0.0")) == "7.0.0"  # type: ignore[arg-type]
    client = Redis.from_url(redis_url)
    try:
        # The server the tests run on is one the ledger's scripts work on.
        version = await log_server_info(client)
    finally:
        await client.aclose()
    assert redis_version_tuple(version) >= MIN_REDIS_VERSION
