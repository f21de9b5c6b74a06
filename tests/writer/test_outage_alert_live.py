"""A real Prometheus (Debian's /usr/bin/prometheus) sees TwitstackXUnreachable go pending.

A real writer works against an X that does not answer (a closed port); Prometheus scrapes its
registry and evaluates the shipped deploy/prometheus/outages.yml. Scrape and evaluation run
every second here; with the shipped 15 s / 30 s the same rule fires within about 2 minutes
(its `for: 1m` is checked by deploy/prometheus/outages_test.yml, not waited for here).
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
import stamina
from prometheus_client import start_http_server
from redis.asyncio import Redis

from tests.conftest import free_port
from tests.support.prometheus import alert_state, running_prometheus
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, writer_settings
from twitstack.core.config import Settings

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus"),
]
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "outages.yml"


async def test_x_unreachable_goes_pending_in_a_real_prometheus(
    make_settings: Callable[..., Settings],
    redis: Redis,
    sandbox: RunningSandbox,
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # nothing listens here: every call to "X" fails to connect
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = writer_settings(make_settings, closed, transient_attempts=2, transient_retry_s=0.05)
    metrics_port = free_port()
    stamina.set_testing(True, attempts=2)
    async with running_writer(settings, redis, sandbox) as writer:
        server, thread = start_http_server(
            metrics_port, addr="127.0.0.1", registry=writer.service.registry
        )
        try:
            targets = {"twitstack-writer": f"127.0.0.1:{metrics_port}"}
            async with running_prometheus(tmp_path, targets, [RULES]) as client:
                await writer.push(approved(tweet("X is down for everyone")))
                seen: str | None = None
                with anyio.fail_after(60):
                    for _ in range(120):
                        seen = await alert_state(client, "TwitstackXUnreachable")
                        if seen is not None:
                            break
                        await anyio.sleep(0.5)
            assert seen == "pending"
            assert writer.metric("writer_x_consecutive_failures") >= 3
        finally:
            server.shutdown()
            thread.join(timeout=10)
