"""A real Prometheus sees TwitstackWriterRedisErrors while Redis is down, and not before.

A real writer runs on its own redis-server, which is killed; Debian's `prometheus` scrapes the
writer's registry every second and evaluates the shipped deploy/prometheus/alerts.yml. The
rule must turn true during the outage (the writer keeps counting errors while it backs off),
not minutes after Redis is back. Its `for: 1m` is checked by alerts_test.yml, not waited for.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client import start_http_server

from tests.conftest import RedisServer, free_port
from tests.support.prometheus import alert_state, running_prometheus
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import running_writer, writer_settings
from twitstack.core.config import Settings
from twitstack.core.redis import create_redis

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus"),
]
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
ALERT = "TwitstackWriterRedisErrors"


async def _wait_for_state(client: httpx.AsyncClient, wanted: str, seconds: float) -> bool:
    with anyio.move_on_after(seconds):
        for _ in range(int(seconds * 2) + 1):
            if await alert_state(client, ALERT) == wanted:
                return True
            await anyio.sleep(0.5)
    return False


async def _scraped(client: httpx.AsyncClient) -> bool:
    try:
        up = await client.get("/api/v1/query", params={"query": "up == 1"})
    except httpx.HTTPError:
        return False  # Prometheus still starting
    return up.status_code == 200 and bool(up.json()["data"]["result"])


async def test_redis_down_turns_the_alert_pending_while_it_lasts(
    make_settings: Callable[..., Settings],
    make_redis_server: Callable[..., RedisServer],
    sandbox: RunningSandbox,
    tmp_path: Path,
) -> None:
    server = make_redis_server()
    redis = create_redis(server.url)
    settings = writer_settings(make_settings, sandbox.base_url, redis_backoff_max_s=1.0)
    metrics_port = free_port()
    try:
        async with running_writer(settings, redis, sandbox) as writer:
            http, thread = start_http_server(
                metrics_port, addr="127.0.0.1", registry=writer.service.registry
            )
            targets = {"twitstack-writer": f"127.0.0.1:{metrics_port}"}
            try:
                async with running_prometheus(tmp_path, targets, [RULES]) as client:
                    # Healthy: Prometheus has scraped a few times and nothing is pending.
                    with anyio.fail_after(30):
                        for _ in range(60):
                            if await _scraped(client):
                                break
                            await anyio.sleep(0.5)
                    await anyio.sleep(3)
                    assert await alert_state(client, ALERT) is None
                    await anyio.to_thread.run_sync(lambda: server.stop(kill=True))
                    during = writer.metric("writer_redis_errors_total")
                    assert await _wait_for_state(client, "pending", 30), "not pending in 30 s"
                    # Still counting while Redis stays down: the alert does not flap off.
                    await anyio.sleep(4)
                    assert writer.metric("writer_redis_errors_total") > during
                    assert await alert_state(client, ALERT) == "pending"
                    await anyio.to_thread.run_sync(server.start)
            finally:
                http.shutdown()
                thread.join(timeout=10)
    finally:
        await redis.aclose()
