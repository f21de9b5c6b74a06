"""ModerationService under the supervisor's seam: serves, follows the ledger, stops."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from tests.writer.harness import SIGNER, tweet
from twitstack.core.config import Settings
from twitstack.core.service import ServiceContext
from twitstack.moderation.service import build_moderation_service
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest, utcnow
from twitstack.writes.wire import encode_write_request

pytestmark = pytest.mark.anyio


async def test_service_serves_and_ingests_until_stopped(
    redis_url: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        api_host="127.0.0.1",
        api_port=0,
        data_dir=tmp_path,
        moderation={"secure_cookies": False, "history_poll_block_ms": 50},
    )
    redis = Redis.from_url(redis_url)
    service = build_moderation_service(ServiceContext(settings, redis, tmp_path))
    assert service.metrics_port is None
    try:
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(10):
                await tg.start(lambda task_status: service.run(task_status=task_status))
            base = f"http://127.0.0.1:{service.bound_port}"
            request = WriteRequest(action=WriteAction.TWEET, payload={"text": "hi"}, author="a")
            await RequestLedger(redis).record(request, actor="a")
            async with httpx.AsyncClient(base_url=base) as client:
                assert (await client.get("/healthz")).json() == {"status": "ok"}
                assert (await client.get("/readyz")).status_code == 200
                with anyio.fail_after(10):
                    for _ in range(200):
                        metrics = (await client.get("/metrics")).text
                        if "moderation_pending_requests 1.0" in metrics:
                            break
                        await anyio.sleep(0.05)
                    else:
                        raise AssertionError("the service never ingested the new request")
            service.request_stop()
    finally:
        await redis.aclose()


async def test_service_records_what_waits_on_write_queue(
    redis_url: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    """With no writer at all, a pending message on write_queue becomes a ledger record."""
    settings = make_settings(
        api_host="127.0.0.1",
        api_port=0,
        data_dir=tmp_path,
        moderation={"secure_cookies": False, "history_poll_block_ms": 50},
    )
    redis = Redis.from_url(redis_url)
    service = build_moderation_service(ServiceContext(settings, redis, tmp_path))
    request = WriteRequest(action=WriteAction.TWEET, payload={"text": "waiting"}, author="a")
    await redis.rpush(keys.WRITE_QUEUE, encode_write_request(request))
    ledger = RequestLedger(redis)
    try:
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(10):
                await tg.start(lambda task_status: service.run(task_status=task_status))
            with anyio.fail_after(10):
                for _ in range(200):
                    if await ledger.get(request.id) is not None:
                        break
                    await anyio.sleep(0.05)
                else:
                    raise AssertionError("the service never recorded the waiting request")
            record = await ledger.get(request.id)
            assert record is not None
            assert record.state is ModerationStatus.PENDING
            assert record.last_actor == "moderation"
            assert await redis.llen(keys.WRITE_QUEUE) == 1  # left for the writer
            service.request_stop()
    finally:
        await redis.aclose()


async def test_service_shows_how_long_approved_requests_wait_with_no_writer(
    redis_url: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    """An approved message nobody executes: moderation's gauge shows its age (no writer runs)."""
    settings = make_settings(
        api_host="127.0.0.1",
        api_port=0,
        data_dir=tmp_path,
        moderation={"secure_cookies": False, "history_poll_block_ms": 50},
    )
    redis = Redis.from_url(redis_url)
    service = build_moderation_service(ServiceContext(settings, redis, tmp_path))
    hour_ago = utcnow() - timedelta(hours=1)
    request = SIGNER.approve(
        tweet("approved, nobody sends it"), approver="mo", approved_at=hour_ago
    )
    await redis.rpush(keys.WRITE_QUEUE, encode_write_request(request))
    try:
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(10):
                await tg.start(lambda task_status: service.run(task_status=task_status))
            with anyio.fail_after(10):
                for _ in range(200):
                    age = service.registry.get_sample_value(
                        "moderation_oldest_approved_age_seconds"
                    )
                    if age is not None and age >= 3600:
                        break
                    await anyio.sleep(0.05)
                else:
                    raise AssertionError(f"moderation never saw the approved request ({age})")
            service.request_stop()
    finally:
        await redis.aclose()
