"""The supervisor in-process: readiness, restarts with backoff, crash loops, metrics per service."""

from __future__ import annotations

import os
import signal
import socket
import stat
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest

from tests.support.services import CrashingService, FailingStartService, JobService
from twitstack.core.config import Settings
from twitstack.core.errors import CrashLoopError, PortInUseError
from twitstack.core.sdnotify import SystemdNotifier
from twitstack.core.sections.supervisor import SupervisorSettings
from twitstack.core.service import Service
from twitstack.supervisor import Supervisor, drain_grace_s, prepare_data_dir, run_daemon

FAST = SupervisorSettings(
    shutdown_grace_s=2,
    restart_backoff_initial_s=0.01,
    restart_backoff_max_s=0.05,
    crash_loop_max_crashes=3,
    crash_loop_window_s=60,
)


def supervisor(services: list[Service], settings: SupervisorSettings = FAST) -> Supervisor:
    return Supervisor(
        services, settings, metrics_host="127.0.0.1", notifier=SystemdNotifier(environ={})
    )


def sample(target: Service, metric: str, **labels: str) -> float | None:
    return target.registry.get_sample_value(metric, labels)


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5) -> None:
    # Polls state owned by other tasks that offer no event to wait on; bounded by fail_after.
    with anyio.fail_after(timeout_s):
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.005)


@pytest.mark.anyio
async def test_reports_ready_after_every_service_started(tmp_path: Path) -> None:
    """run() signals started only once all services are up, and marks them up."""
    alpha = JobService("alpha", journal=tmp_path / "j", metrics_port=None)
    beta = JobService("beta", journal=tmp_path / "j", metrics_port=None)
    sup = supervisor([alpha, beta])
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            assert sample(alpha, "twitstack_service_up", service="alpha") == 1
            assert sample(beta, "twitstack_service_up", service="beta") == 1
            sup.request_stop()
    assert sample(alpha, "twitstack_service_up", service="alpha") == 0


@pytest.mark.anyio
async def test_crashed_service_is_restarted_with_backoff(tmp_path: Path) -> None:
    """A crash is counted and the service restarted while the other keeps running."""
    flaky = CrashingService("flaky", crashes=2)
    steady = JobService("steady", journal=tmp_path / "j", metrics_port=None)
    sup = supervisor([flaky, steady])
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            await wait_until(lambda: flaky.starts == 3)
            await wait_until(lambda: sample(flaky, "twitstack_service_up", service="flaky") == 1)
            assert sample(flaky, "twitstack_service_restarts_total", service="flaky") == 2
            assert sample(steady, "twitstack_service_restarts_total", service="steady") == 0
            assert steady.jobs._value.get() >= 1
            sup.request_stop()


@pytest.mark.anyio
async def test_crash_loop_stops_the_daemon_when_exit_is_chosen(tmp_path: Path) -> None:
    """With crash_loop_action = "exit", more crashes than allowed raise CrashLoopError."""
    doomed = CrashingService("doomed", crashes=100)
    sup = supervisor([doomed], FAST.model_copy(update={"crash_loop_action": "exit"}))
    with anyio.fail_after(10), pytest.raises(ExceptionGroup) as caught:
        await sup.run()
    assert caught.group_contains(CrashLoopError, match="doomed crashed 4 times")
    assert doomed.starts == 4


PARKING = FAST.model_copy(
    update={
        "crash_loop_park_backoff_initial_s": 0.05,
        "crash_loop_park_backoff_max_s": 0.2,
        "crash_loop_window_s": 30,
    }
)


@pytest.mark.anyio
async def test_crash_loop_parks_the_service_while_the_others_keep_working(tmp_path: Path) -> None:
    """A crash-looping service is parked (up 0, parked 1) and retried; the daemon stays up."""
    doomed = CrashingService("doomed", crashes=1000)
    steady = JobService("steady", journal=tmp_path / "j", metrics_port=None)
    sup = supervisor([doomed, steady], PARKING)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            await wait_until(
                lambda: sample(doomed, "twitstack_service_parked", service="doomed") == 1
            )
            parked_at = doomed.starts
            assert parked_at == 4  # max 3 crashes in the window, the 4th parks it
            jobs = steady.jobs._value.get()
            # Parked is not given up: it is still retried (on the park backoff).
            await wait_until(lambda: doomed.starts >= parked_at + 3, 30)
            await wait_until(lambda: steady.jobs._value.get() > jobs)
            assert sample(steady, "twitstack_service_up", service="steady") == 1
            assert sample(steady, "twitstack_service_parked", service="steady") == 0
            sup.request_stop()
    assert sample(doomed, "twitstack_service_up", service="doomed") == 0


@pytest.mark.anyio
async def test_parked_service_is_unparked_once_it_stays_up_for_the_window() -> None:
    """After its crashes stop, a parked service that runs a whole window is unparked."""
    recovering = CrashingService("recovering", crashes=2)
    # The second crash within 3 s parks it; the third start stays up for the 3 s window.
    settings = PARKING.model_copy(update={"crash_loop_max_crashes": 1, "crash_loop_window_s": 3})
    sup = supervisor([recovering], settings)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            await wait_until(
                lambda: sample(recovering, "twitstack_service_parked", service="recovering") == 1,
                30,
            )
            await wait_until(lambda: recovering.starts == 3, 30)
            await wait_until(
                lambda: sample(recovering, "twitstack_service_parked", service="recovering") == 0,
                30,
            )
            assert sample(recovering, "twitstack_service_up", service="recovering") == 1
            sup.request_stop()


@pytest.mark.anyio
async def test_failure_before_ready_is_a_startup_error() -> None:
    """A service that cannot start fails the daemon at once, without restarts."""
    sup = supervisor([FailingStartService("broken")])
    with anyio.fail_after(10), pytest.raises(ExceptionGroup) as caught:
        await sup.run()
    assert caught.group_contains(OSError, match="broken cannot open")


@pytest.mark.anyio
async def test_each_metrics_endpoint_serves_only_its_service(tmp_path: Path) -> None:
    """Two services on two ports: each /metrics has its own series and not the other's."""
    alpha = JobService("alpha", journal=tmp_path / "j", metrics_port=0)
    beta = JobService("beta", journal=tmp_path / "j", metrics_port=0)
    sup = supervisor([alpha, beta])
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            async with httpx.AsyncClient() as client:
                pages = {
                    name: (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                    for name, port in sup.metrics_ports.items()
                }
            sup.request_stop()
    assert set(pages) == {"alpha", "beta"}
    assert 'twitstack_service_up{service="alpha"} 1.0' in pages["alpha"]
    assert 'service="beta"' not in pages["alpha"]
    assert 'twitstack_service_up{service="beta"} 1.0' in pages["beta"]
    assert "test_jobs_total" in pages["alpha"]
    # The global default registry is not what is served.
    assert "python_gc_objects_collected_total" not in pages["alpha"]


@pytest.mark.anyio
async def test_port_in_use_is_one_line_naming_port_and_service(tmp_path: Path) -> None:
    """A taken metrics port fails start-up with the port and the service in the message."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        alpha = JobService("alpha", journal=tmp_path / "j", metrics_port=port)
        with anyio.fail_after(10), pytest.raises(ExceptionGroup) as caught:
            await supervisor([alpha]).run()
    assert caught.group_contains(
        PortInUseError, match=f"^alpha metrics: port {port} on 127.0.0.1 is already in use$"
    )


@pytest.mark.anyio
async def test_stop_drains_in_flight_work(tmp_path: Path) -> None:
    """request_stop lets the job in flight finish before run() returns."""
    journal = tmp_path / "journal"
    worker = JobService("worker", journal=journal, job_s=0.3, metrics_port=None)
    sup = supervisor([worker])
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            await wait_until(lambda: journal.exists() and "started" in journal.read_text())
            sup.request_stop()
    lines = journal.read_text().splitlines()
    assert lines[-1].endswith("finished")
    started = sum(line.endswith("started") for line in lines)
    assert started == sum(line.endswith("finished") for line in lines)


@pytest.mark.anyio
async def test_grace_period_bounds_the_drain(tmp_path: Path) -> None:
    """Work longer than the grace period is cancelled when the grace expires."""
    journal = tmp_path / "journal"
    slow = JobService("slow", journal=journal, job_s=30, metrics_port=None)
    sup = supervisor([slow], FAST.model_copy(update={"shutdown_grace_s": 0.2}))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            await wait_until(lambda: journal.exists())
            sup.request_stop()
    assert journal.read_text().splitlines() == ["slow job 1 started"]


def test_data_dir_is_created_private(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """data_dir is created with mode 0700 (it holds sessions, keys and tokens)."""
    settings = make_settings(data_dir=tmp_path / "state" / "twitstack")
    prepare_data_dir(settings)
    assert settings.state_dir.is_dir()
    assert stat.S_IMODE(settings.state_dir.stat().st_mode) == 0o700


def test_existing_data_dir_is_made_private(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A data_dir left world-readable is tightened at start."""
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    prepare_data_dir(make_settings(data_dir=loose))
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700


@pytest.mark.anyio
async def test_the_writers_own_grace_extends_the_drain(
    make_settings: Callable[..., Settings], redis_url: str, tmp_path: Path
) -> None:
    """[writer] shutdown_grace_s longer than the supervisor's: the writer's job may finish."""
    journal = tmp_path / "journal"
    settings = make_settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        supervisor={"shutdown_grace_s": 0.05, "metrics_host": "127.0.0.1"},
        writer={"shutdown_grace_s": 20.0},
    )
    writer = JobService("writer", journal=journal, job_s=1.0, metrics_port=None)
    assert drain_grace_s(settings, ["writer", "moderation"]) == 20.0
    assert drain_grace_s(settings, ["moderation"]) == 0.05
    with anyio.fail_after(15):
        async with anyio.create_task_group() as tg:
            await tg.start(partial(run_daemon, settings, catalog={"writer": lambda _: writer}))
            await wait_until(lambda: journal.exists())
            os.kill(os.getpid(), signal.SIGTERM)  # the supervisor's receiver takes it
    assert journal.read_text().splitlines() == ["writer job 1 started", "writer job 1 finished"]
