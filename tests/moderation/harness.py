"""A moderation app over real Redis and SQLite, driven in-process through httpx."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from starlette.applications import Starlette

from tests.moderation.conftest import ManualClock
from twitstack.core.metrics import new_registry
from twitstack.core.sections.moderation import ModerationSettings
from twitstack.moderation.app import create_app
from twitstack.moderation.deps import ModerationDeps
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.roles import Role
from twitstack.moderation.wiring import open_moderation_deps
from twitstack.writes.models import WriteAction, WriteRequest

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
BASE_URL = "https://testserver"


def csrf_from(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "page has no CSRF token"
    return found.group(1)


@dataclass
class Harness:
    """The app, its collaborators and helpers to make users, sessions and requests."""

    app: Starlette
    deps: ModerationDeps
    clock: ManualClock
    redis: Redis
    users: dict[str, int] = field(default_factory=dict)

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000))
        return httpx.AsyncClient(transport=transport, base_url=BASE_URL)

    async def add_user(self, name: str, role: Role) -> int:
        user = await self.deps.users.create(name, PASSWORD, role)
        self.users[name] = user.id
        return user.id

    async def login(self, client: httpx.AsyncClient, name: str) -> str:
        """Log `client` in as `name`; returns the session's CSRF token."""
        page = await client.get("/login")
        response = await client.post(
            "/login",
            data={"username": name, "password": PASSWORD, "csrf_token": csrf_from(page.text)},
        )
        assert response.status_code == 303, response.text
        queue = await client.get("/queue")
        assert queue.status_code == 200
        return csrf_from(queue.text)

    async def bearer(
        self, name: str, scopes: tuple[str, ...] = ("read", "write", "moderate")
    ) -> str:
        _, key = await self.deps.apikeys.create(self.users[name], "test", scopes)
        return self.deps.tokens.issue(key)

    async def pending(self, *, author: str = "someone", text: str = "hello", **extra: Any) -> str:
        """Record a pending tweet in the ledger and ingest it; returns its id."""
        request = WriteRequest(
            action=extra.pop("action", WriteAction.TWEET),
            payload=extra.pop("payload", {"text": text}),
            author=author,
            **extra,
        )
        await self.deps.decisions.ledger.record(request, actor=author)
        await self.deps.history.catch_up()
        return request.id

    async def content_hash(self, request_id: str) -> str:
        """The content hash a reviewer of the ledger's current record sends back on approve."""
        record = await self.deps.decisions.ledger.get(request_id)
        assert record is not None, f"request {request_id} is not in the ledger"
        return record.request.content_hash()


@asynccontextmanager
async def open_harness(
    redis_url: str, data_dir: Path, passwords: PasswordService, **settings: Any
) -> AsyncIterator[Harness]:
    clock = ManualClock(time.time())
    redis = Redis.from_url(redis_url)
    try:
        async with open_moderation_deps(
            ModerationSettings(**settings),
            redis=redis,
            data_dir=data_dir,
            registry=new_registry(),
            clock=clock,
            passwords=passwords,
            known_accounts=("default",),
        ) as deps:
            yield Harness(app=create_app(deps), deps=deps, clock=clock, redis=redis)
    finally:
        await redis.aclose()
