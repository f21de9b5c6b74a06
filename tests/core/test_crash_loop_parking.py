"""A crash-looping moderation service is parked while the real writer keeps executing."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox, sandbox, sandbox_config
from tests.writer.harness import SECRETS, approved, tweet, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.core.crash_injection import CrashInjector, crash_key
from twitstack.core.sdnotify import SystemdNotifier
from twitstack.core.sections.supervisor import SupervisorSettings
from twitstack.core.service import ServiceContext
from twitstack.moderation.service import ModerationService
from twitstack.supervisor import Supervisor, prepare_data_dir
from twitstack.writer.service import WriterService
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus
from twitstack.writes.wire import encode_write_request

__all__ = ["sandbox", "sandbox_config"]  # fixtures, imported to be found by pytest

PARK_FAST = SupervisorSettings(
    shutdown_grace_s=5,
    restart_backoff_initial_s=0.05,
    restart_backoff_max_s=0.1,
    crash_loop_max_crashes=2,
    crash_loop_window_s=120,
    crash_loop_park_backoff_initial_s=0.2,
    crash_loop_park_backoff_max_s=0.5,
)


@pytest.mark.anyio
async def test_writer_executes_while_moderation_is_parked(
    make_settings: Callable[..., Settings], redis_url: str, sandbox: RunningSandbox
) -> None:
    """Moderation crashes on every start and is parked; an approved request is still executed."""
    settings = writer_settings(make_settings, sandbox.base_url)
    settings = settings.model_copy(update={"api_host": "127.0.0.1", "api_port": 0})
    prepare_data_dir(settings)
    redis = Redis.from_url(redis_url)
    context = ServiceContext(settings=settings, redis=redis, data_dir=settings.state_dir)
    moderation = ModerationService(context)

    async def lookup(name: str) -> str | None:
        return SECRETS.get(name)

    writer = WriterService(settings, redis, secret=lookup, clock=sandbox.state.clock.now)
    sup = Supervisor(
        [writer, moderation],
        PARK_FAST,
        metrics_host="127.0.0.1",
        notifier=SystemdNotifier(environ={}),
        crash_injector=CrashInjector(redis, poll_s=0.05),
    )

    def gauge(name: str, service: str) -> float | None:
        target = moderation if service == "moderation" else writer
        return target.registry.get_sample_value(name, {"service": service})

    try:
        with anyio.fail_after(90):
            async with anyio.create_task_group() as tg:
                await tg.start(sup.run)
                await redis.set(crash_key("moderation"), 1000)

                async def parked() -> bool:
                    return gauge("twitstack_service_parked", "moderation") == 1

                await wait_until(parked, timeout_s=60)
                request = approved(tweet("written while moderation is parked"))
                await redis.rpush(keys.WRITE_QUEUE, encode_write_request(request))
                ledger = RequestLedger(redis)

                async def executed() -> bool:
                    record = await ledger.get(request.id)
                    return record is not None and record.state is ModerationStatus.EXECUTED

                await wait_until(executed, timeout_s=30)
                assert gauge("twitstack_service_parked", "moderation") == 1
                assert gauge("twitstack_service_up", "writer") == 1
                assert gauge("twitstack_service_restarts_total", "writer") == 0
                assert [p.text for p in sandbox.state.content.posts.values()] == [
                    "written while moderation is parked"
                ]
                sup.request_stop()
    finally:
        await redis.aclose()
