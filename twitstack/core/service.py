"""The seam between the supervisor and the services it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from twitstack.core.config import Settings


class Service(Protocol):
    """A long-running part of the daemon, started and supervised by `twitstack.supervisor`."""

    name: str
    registry: CollectorRegistry
    # The supervisor serves `registry` on this port; None when the service serves /metrics itself.
    metrics_port: int | None

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        """Open what it owns, call `task_status.started()` once ready, work until stopped."""
        ...

    def request_stop(self) -> None:
        """Stop taking new work; `run()` returns once in-flight work is finished."""
        ...


@dataclass(frozen=True)
class ServiceContext:
    """What the composition root hands to every service builder."""

    settings: Settings
    redis: Redis
    data_dir: Path


ServiceBuilder = Callable[[ServiceContext], Service]
