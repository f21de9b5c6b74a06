"""Notifier fixtures: settings with fast retries, a running service, a ledger to drive it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from twitstack.core.config import Settings
from twitstack.core.secrets import configure_secrets
from twitstack.core.service import ServiceContext
from twitstack.notifier.service import NotifierService
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest

BASE = "https://moderation.example.test"
HOOK_KEY = "test-signing-key-0123456789"
RunNotifier = Callable[..., Any]


@pytest.fixture
def notifier_settings(
    make_settings: Callable[..., Settings], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Settings]:
    """Settings with the given channels (secrets in the environment) and quick retries."""

    def make(**notifier: Any) -> Settings:
        monkeypatch.setenv("TEST_HOOK_KEY", HOOK_KEY)
        values: dict[str, Any] = {
            "moderation_base_url": BASE,
            "metrics_port": None,
            "check_interval_s": 0.1,
            "retry_initial_s": 0.05,
            "retry_max_s": 0.2,
            "delivery_timeout_s": 2,
            # Tests that send several messages of one kind must not wait a minute for each;
            # test_coalesce.py sets its own window.
            "coalesce_window_s": 0,
            **notifier,
        }
        settings = make_settings(redis_url=redis_url, notifier=values)
        configure_secrets(settings)
        return settings

    return make


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def run_notifier(redis: Redis, tmp_path: Path) -> RunNotifier:
    """`async with run_notifier(settings) as service:` runs one notifier for the block."""

    @asynccontextmanager
    async def run(settings: Settings) -> AsyncIterator[NotifierService]:
        context = ServiceContext(settings=settings, redis=redis, data_dir=tmp_path)
        service = NotifierService(context)
        async with anyio.create_task_group() as tg:
            await tg.start(lambda task_status: service.run(task_status=task_status))
            try:
                yield service
            finally:
                service.request_stop()

    return run


async def needs_review(redis: Redis, text: str, *, reason: str = "bad signature") -> str:
    """Record a pending tweet and move it to needs_review, as the writer would; its id."""
    ledger = RequestLedger(redis)
    request = WriteRequest(action=WriteAction.TWEET, payload={"text": text}, author="test")
    await ledger.record(request, actor="test")
    await ledger.transition(
        request.id, ModerationStatus.NEEDS_REVIEW, from_states=[ModerationStatus.PENDING],
        actor="writer", reason=reason,
    )  # fmt: skip
    return request.id


def sample(service: NotifierService, name: str, **labels: str) -> float:
    value = service.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
