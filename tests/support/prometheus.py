"""Debian's `prometheus` on a free loopback port, evaluating shipped rule files, for live tests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import yaml

from tests.conftest import free_port


def scrape_config(targets: dict[str, str], rules: Iterable[Path]) -> str:
    """Scrape and evaluate every second: job name → host:port, rule files by their names."""
    jobs = [{"job_name": job, "static_configs": [{"targets": [t]}]} for job, t in targets.items()]
    return yaml.safe_dump(
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [path.name for path in rules],
            "scrape_configs": jobs,
        }
    )


@asynccontextmanager
async def running_prometheus(
    directory: Path, targets: dict[str, str], rules: Iterable[Path], *, timeout: float = 5
) -> AsyncIterator[httpx.AsyncClient]:
    """Start Prometheus with its config, rules and TSDB in `directory`; yield a client for it."""
    rules = list(rules)
    for path in rules:
        shutil.copy(path, directory / path.name)
    (directory / "prometheus.yml").write_text(scrape_config(targets, rules))
    port = free_port()
    process = await anyio.open_process(
        [
            "prometheus",
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=timeout) as client:
            yield client
    finally:
        process.terminate()
        with anyio.fail_after(20):
            await process.wait()


async def alert_state(client: httpx.AsyncClient, name: str) -> str | None:
    """The state of alert `name` (pending, firing), or None if absent or Prometheus not up yet."""
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
