"""A Redis outage under a running notifier: it waits it out, and loses nothing after."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.notifier.conftest import HOOK_KEY, needs_review, sample
from tests.notifier.receivers import WebhookReceiver, wait_until
from twitstack.core.config import Settings
from twitstack.core.redis import create_redis
from twitstack.core.secrets import configure_secrets
from twitstack.core.service import ServiceContext
from twitstack.notifier.service import NotifierService

pytestmark = pytest.mark.anyio


async def test_redis_restart_is_survived_and_later_events_delivered(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    make_redis_server: Callable[..., RedisServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kill -9 of Redis: errors are counted, the service keeps running, and events written
    once Redis is back (with the cursor and outbox it persisted) are delivered."""
    receiver = WebhookReceiver(HOOK_KEY)
    monkeypatch.setenv("TEST_HOOK_URL", f"{receiver.url}/hook")
    monkeypatch.setenv("TEST_HOOK_KEY", HOOK_KEY)
    server = make_redis_server(appendonly=True)
    settings = make_settings(
        redis_url=server.url,
        notifier={
            "moderation_base_url": "https://m.example", "metrics_port": None,
            "check_interval_s": 0.1, "retry_initial_s": 0.05, "coalesce_window_s": 0,
            "webhook": {"url_secret": "TEST_HOOK_URL", "signing_key_secret": "TEST_HOOK_KEY"},
        },
    )  # fmt: skip
    configure_secrets(settings)
    redis: Redis = create_redis(server.url)
    try:
        service = NotifierService(ServiceContext(settings=settings, redis=redis, data_dir=tmp_path))
        async with receiver.serving(), anyio.create_task_group() as tg:
            await tg.start(lambda task_status: service.run(task_status=task_status))
            before = await needs_review(redis, "before the outage")
            await wait_until(lambda: len(receiver.delivered()) == 1)
            await anyio.to_thread.run_sync(lambda: server.stop(kill=True))
            await wait_until(lambda: sample(service, "notifier_redis_errors_total") >= 1)
            await anyio.to_thread.run_sync(server.start)
            after = await needs_review(redis, "after the outage")
            await wait_until(lambda: after in str([h.body for h in receiver.delivered()]))
            service.request_stop()
    finally:
        await redis.aclose()
    delivered = [hit.body["requests"][0]["id"] for hit in receiver.delivered()]  # type: ignore[index]
    assert delivered == [before, after]
