"""Ops CLI test fixtures: settings pointing at the private Redis, and a way to run a subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import anyio
import pytest
import redis

from twitstack.core.config import Settings
from twitstack.core.logging import configure_logging
from twitstack.ops.commands import add_commands

T = TypeVar("T")


def invoke(settings: Settings, *argv: str) -> int:
    """Parse `argv` with the ops commands registered on a bare parser and run its handler."""
    parser = argparse.ArgumentParser(prog="twitstack")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    # As twitstack.cli does for one-shot commands: logs on stderr, stdout keeps the output.
    configure_logging("prod", "info", stream=sys.stderr)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    return handler(args, settings)


def run_async(work: Callable[[], Awaitable[T]]) -> T:
    """Run one coroutine function to completion under a time limit (for sync tests)."""

    async def bounded() -> T:
        with anyio.fail_after(10):
            return await work()

    return anyio.run(bounded)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], redis_url: str) -> Settings:
    """Settings whose Redis is the session's private server."""
    return make_settings(redis_url=redis_url)


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A synchronous bytes client, for seeding and inspecting Redis around a command."""
    client: redis.Redis = redis.Redis.from_url(redis_url, socket_timeout=10)
    yield client
    client.close()


def lines(text: str) -> list[str]:
    """Non-empty lines of captured output."""
    return [line for line in text.splitlines() if line.strip()]
