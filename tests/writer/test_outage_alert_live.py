"""A real Prometheus (Debian's /usr/bin/prometheus) sees TwitstackXUnreachable go pending.

A real writer works against an X that does not answer (a closed port); Prometheus scrapes its
registry and evaluates the shipped deploy/prometheus/outages.yml. Scrape and evaluation run
every second here; with the shipped 15 s / 30 s the same rule fires within about 2 minutes
(its `for: 1m` is checked by deploy/prometheus/outages_test.yml, not waited for here).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import stamina
from prometheus_client import start_http_server
from redis.asyncio import Redis

from tests.conftest import free_port
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, writer_settings
from twitstack.core.config import Settings

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus"),
]
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "outages.yml"


def _config(target: str) -> str:
    return f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [outages.yml]
scrape_configs:
  - job_name: twitstack-writer
    static_configs: [{{targets: ["{target}"]}}]
"""


async def _alert_state(client: httpx.AsyncClient, name: str) -> str | None:
    try:
        answer = await client.get("/api/v1/alerts")
        # Until its TSDB is open Prometheus answers 503 with a plain-text (or empty) body.
        body: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return None  # Prometheus still starting
    if not body:
        return None
    states = [a["state"] for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]
    return states[0] if states else None


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
    (tmp_path / "outages.yml").write_text(RULES.read_text())
    metrics_port, prom_port = free_port(), free_port()
    (tmp_path / "prometheus.yml").write_text(_config(f"127.0.0.1:{metrics_port}"))
    stamina.set_testing(True, attempts=2)
    async with running_writer(settings, redis, sandbox) as writer:
        server, thread = start_http_server(
            metrics_port, addr="127.0.0.1", registry=writer.service.registry
        )
        prometheus = await anyio.open_process(
            [
                "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await writer.push(approved(tweet("X is down for everyone")))
            seen: str | None = None
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{prom_port}") as client:
                with anyio.fail_after(60):
                    for _ in range(120):
                        seen = await _alert_state(client, "TwitstackXUnreachable")
                        if seen is not None:
                            break
                        await anyio.sleep(0.5)
            assert seen == "pending"
            assert writer.metric("writer_x_consecutive_failures") >= 3
        finally:
            prometheus.terminate()
            with anyio.fail_after(20):
                await prometheus.wait()
            server.shutdown()
            thread.join(timeout=10)
