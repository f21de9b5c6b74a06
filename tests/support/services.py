"""Test-only services that exercise the supervisor through the same seam as the real ones."""

from __future__ import annotations

from pathlib import Path

import anyio
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry, Counter

from twitstack.core.metrics import new_registry
from twitstack.core.service import ServiceContext


class JobService:
    """Runs jobs of `job_s` seconds back to back, recording each start and finish in a file.

    On request_stop it finishes the job in flight and returns, like a real service draining.
    """

    def __init__(
        self,
        name: str,
        *,
        journal: Path,
        job_s: float = 0.05,
        metrics_port: int | None = 0,
        needs_redis: ServiceContext | None = None,
    ) -> None:
        self.name = name
        self.registry: CollectorRegistry = new_registry()
        self.metrics_port = metrics_port
        self._journal = journal
        self._job_s = job_s
        self._context = needs_redis
        self._stop = anyio.Event()
        self.jobs = Counter("test_jobs_total", "Jobs finished.", registry=self.registry)

    def _write(self, line: str) -> None:
        with self._journal.open("a") as journal:
            journal.write(f"{self.name} {line}\n")

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        if self._context is not None:
            await self._context.redis.ping()
        task_status.started()
        number = 0
        while not self._stop.is_set():
            number += 1
            self._write(f"job {number} started")
            await anyio.sleep(self._job_s)
            self._write(f"job {number} finished")
            self.jobs.inc()

    def request_stop(self) -> None:
        self._stop.set()


class CrashingService:
    """Starts fine, then raises `crashes` times shortly after each start, then runs quietly."""

    def __init__(self, name: str, *, crashes: int, metrics_port: int | None = None) -> None:
        self.name = name
        self.registry = new_registry()
        self.metrics_port = metrics_port
        self.crashes_left = crashes
        self.starts = 0
        self._stop = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        self.starts += 1
        task_status.started()
        await anyio.sleep(0.01)
        if self.crashes_left > 0:
            self.crashes_left -= 1
            raise RuntimeError(f"{self.name} failed on purpose")
        await self._stop.wait()

    def request_stop(self) -> None:
        self._stop.set()


class FailingStartService:
    """Raises before it is ready, as a service that cannot bind or connect would."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.registry = new_registry()
        self.metrics_port = None

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        raise OSError(f"{self.name} cannot open what it needs")

    def request_stop(self) -> None:
        """Nothing runs, so nothing to stop."""
