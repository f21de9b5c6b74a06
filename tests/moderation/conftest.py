"""Fixtures of the moderation tests: a manual clock, a fast hasher, an opened store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from argon2 import PasswordHasher

from twitstack.moderation.db import Database, open_database
from twitstack.moderation.passwords import PasswordService

if TYPE_CHECKING:
    from tests.moderation.harness import Harness


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fast_passwords() -> PasswordService:
    """argon2id with tiny parameters: the behaviour under test is the same, only cheaper."""
    return PasswordService(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(tmp_path / "moderation.sqlite3") as database:
        yield database


@pytest.fixture
async def mod(
    redis_url: str, tmp_path: Path, fast_passwords: PasswordService
) -> AsyncIterator[Harness]:
    """A moderation app over the test Redis and a fresh SQLite store."""
    from tests.moderation.harness import open_harness

    async with open_harness(redis_url, tmp_path, fast_passwords) as harness:
        yield harness
