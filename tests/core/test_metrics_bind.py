"""The writer's and scraper's /metrics listen on loopback unless told otherwise."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import pytest

from tests.support.services import JobService
from twitstack.core.sdnotify import SystemdNotifier
from twitstack.core.sections.supervisor import SupervisorSettings
from twitstack.supervisor import Supervisor


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("metrics_host", "reachable_on_127_0_0_2"), [(None, False), ("0.0.0.0", True)]
)
async def test_metrics_listen_on_loopback_by_default(
    tmp_path: Path, metrics_host: str | None, reachable_on_127_0_0_2: bool
) -> None:
    """Bound to 127.0.0.1 (not 0.0.0.0): another address of the host, 127.0.0.2, is refused.

    Binding everywhere is the explicit `metrics_host = "0.0.0.0"`.
    """
    overrides = {} if metrics_host is None else {"metrics_host": metrics_host}
    settings = SupervisorSettings(shutdown_grace_s=2, **overrides)
    service = JobService("alpha", journal=tmp_path / "j", metrics_port=0)
    # As the daemon builds it (twitstack.supervisor.run_daemon).
    sup = Supervisor(
        [service],
        settings,
        metrics_host=settings.metrics_host,
        notifier=SystemdNotifier(environ={}),
    )
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            port = sup.metrics_ports["alpha"]
            on_loopback = await anyio.to_thread.run_sync(_accepts, "127.0.0.1", port)
            elsewhere = await anyio.to_thread.run_sync(_accepts, "127.0.0.2", port)
            sup.request_stop()
    assert on_loopback
    assert elsewhere is reachable_on_127_0_0_2
