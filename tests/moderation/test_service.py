"""ModerationService under the supervisor's seam: serves, follows the ledger, stops."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from tests.writer.harness import SIGNER, tweet
from twitstack.core.config import Settings
from twitstack.core.service import ServiceContext
from twitstack.moderation.service import ModerationService, build_moderation_service
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest, utcnow
from twitstack.writes.wire import encode_write_request

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def running_service(
    redis_url: str,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    before_start: Callable[[Redis], Awaitable[object]] | None = None,
) -> AsyncIterator[tuple[ModerationService, Redis]]:
    """The moderation service started on a free port (after `before_start`), stopped on exit."""
    settings = make_settings(
        api_host="127.0.0.1",
        api_port=0,
        data_dir=tmp_path,
        moderation={"secure_cookies": False, "history_poll_block_ms": 50},
    )
    redis = Redis.from_url(redis_url)
    service = build_moderation_service(ServiceContext(settings, redis, tmp_path))
    try:
        if before_start is not None:
            await before_start(redis)
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(10):
                await tg.start(lambda task_status: service.run(task_status=task_status))
            yield service, redis
            service.request_stop()
    finally:
        await redis.aclose()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait up to 10 s (200 tries) for `check`; fail naming `what` otherwise."""
    with anyio.fail_after(10):
        for _ in range(200):
            if await check():
                return
            await anyio.sleep(0.05)
    raise AssertionError(what)


async def test_service_serves_and_ingests_until_stopped(
    redis_url: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    async with running_service(redis_url, tmp_path, make_settings) as (service, redis):
        assert service.metrics_port is None
        base = f"http://127.0.0.1:{service.bound_port}"
        request = WriteRequest(action=WriteAction.TWEET, payload={"text": "hi"}, author="a")
        await RequestLedger(redis).record(request, actor="a")
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/readyz")).status_code == 200

            async def ingested() -> bool:
                return "moderation_pending_requests 1.0" in (await client.get("/metrics")).text

            await eventually(ingested, "the service never ingested the new request")


async def test_service_records_what_waits_on_write_queue(
    redis_url: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    """With no writer at all, a pending message on write_queue becomes a ledger record."""
    request = WriteRequest(action=WriteAction.TWEET, payload={"text": "waiting"}, author="a")

    async def push(redis: Redis) -> object:
        return await redis.rpush(keys.WRITE_QUEUE, encode_write_request(request))

    async with running_service(redis_url, tmp_path, make_settings, push) as (_, redis):
        ledger = RequestLedger(redis)

        async def recorded() -> bool:
            return await ledger.get(request.id) is not None

        await eventually(recorded, "the service never recorded the waiting request")
        record = await ledger.get(request.id)
        assert record is not None
        assert record.state is ModerationStatus.PENDING
        assert record.last_actor == "moderation"
        assert await redis.llen(keys.WRITE_QUEUE) == 1  # left for the writer


async def test_service_shows_how_long_approved_requests_wait_with_no_writer(
    redis_url: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    """An approved message nobody executes: moderation's gauge shows its age (no writer runs)."""
    hour_ago = utcnow() - timedelta(hours=1)
    request = SIGNER.approve(
        tweet("approved, nobody sends it"), approver="mo", approved_at=hour_ago
    )

    async def push(redis: Redis) -> object:
        return await redis.rpush(keys.WRITE_QUEUE, encode_write_request(request))

    async with running_service(redis_url, tmp_path, make_settings, push) as (service, _):

        async def aged() -> bool:
            age = service.registry.get_sample_value("moderation_oldest_approved_age_seconds")
            return age is not None and age >= 3600

        await eventually(aged, "moderation never saw the approved request's age")
