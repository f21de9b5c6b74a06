"""Writer test fixtures: the fake X API served on loopback, a Redis client, a shared clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import pytest
from redis.asyncio import Redis

from twitstack.core.http_server import serve_asgi
from twitstack.sandbox.xapi.app import create_xapi_app
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.sandbox.xapi.state import XApiState


@dataclass
class RunningSandbox:
    """The fake X API on a loopback port, with its state for inspection."""

    base_url: str
    state: XApiState


async def _serve(state: XApiState) -> AsyncIterator[RunningSandbox]:
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve_asgi(
                create_xapi_app(state=state),
                host="127.0.0.1",
                port=0,
                name="xapi-sandbox",
                task_status=task_status,
            )
        )
        yield RunningSandbox(f"http://127.0.0.1:{port}", state)
        tg.cancel_scope.cancel()


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """Override in a test module to shape the fake (frozen clock by default)."""
    return XApiSandboxConfig(clock_start=1_800_000_000.0, clock_frozen=True)


@pytest.fixture
async def sandbox(sandbox_config: XApiSandboxConfig) -> AsyncIterator[RunningSandbox]:
    """The fake X API serving on 127.0.0.1 for one test."""
    async for running in _serve(XApiState(sandbox_config)):
        yield running


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the session's private Redis (flushed per test)."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
