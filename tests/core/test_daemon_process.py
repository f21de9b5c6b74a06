"""The daemon as systemd runs it: a real process, real signals, a real notify socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def spawn(
    args: list[str], *, tmp_path: Path, redis_url: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TWITSTACK_")}
    base.update(
        {
            "TWITSTACK_ENV": "prod",
            "TWITSTACK_REDIS_URL": redis_url,
            "TWITSTACK_DATA_DIR": str(tmp_path / "data"),
            "TWITSTACK_SUPERVISOR__METRICS_HOST": "127.0.0.1",
            "TWITSTACK_SUPERVISOR__SHUTDOWN_GRACE_S": "5",
            "TEST_JOURNAL": str(tmp_path / "journal"),
            "PYTHONPATH": str(REPO),
        }
    )
    base.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.daemon", *args],
        cwd=tmp_path,
        env=base,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(path: Path, needle: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"{needle!r} never appeared in {path}")


def wait_for_port(port: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on {port}")


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(20)
    yield sock
    sock.close()


def test_sigterm_drains_in_flight_work_and_exits_0(tmp_path: Path, redis_url: str) -> None:
    """SIGTERM while a job runs: the job finishes, the process exits 0 within the grace."""
    journal = tmp_path / "journal"
    proc = spawn(["run"], tmp_path=tmp_path, redis_url=redis_url, env={"TEST_JOB_S": "1.0"})
    try:
        wait_for_line(journal, "alpha job 1 started")
        wait_for_line(journal, "beta job 1 started")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    lines = journal.read_text().splitlines()
    for name in ("alpha", "beta"):
        mine = [line for line in lines if line.startswith(name)]
        assert mine[-1].endswith("finished"), mine
        assert sum(x.endswith("started") for x in mine) == sum(x.endswith("finished") for x in mine)


def test_second_signal_cancels_at_once(tmp_path: Path, redis_url: str) -> None:
    """A second SIGTERM during the drain stops without waiting for the job."""
    journal = tmp_path / "journal"
    proc = spawn(["run"], tmp_path=tmp_path, redis_url=redis_url, env={"TEST_JOB_S": "60"})
    try:
        wait_for_line(journal, "job 1 started")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert "finished" not in journal.read_text()


def test_sd_notify_ready_watchdog_stopping(
    tmp_path: Path, redis_url: str, notify_socket: socket.socket
) -> None:
    """READY=1 after start, WATCHDOG=1 pings, STOPPING=1 on shutdown, over a real socket."""
    proc = spawn(
        ["run"],
        tmp_path=tmp_path,
        redis_url=redis_url,
        env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "200000"},
    )
    messages: list[str] = []
    try:
        while not any("READY=1" in m for m in messages):
            messages.append(notify_socket.recv(4096).decode())
        while sum("WATCHDOG=1" in m for m in messages) < 2:
            messages.append(notify_socket.recv(4096).decode())
        proc.send_signal(signal.SIGTERM)
        while not any("STOPPING=1" in m for m in messages):
            messages.append(notify_socket.recv(4096).decode())
        proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0
    ready = next(m for m in messages if "READY=1" in m)
    assert f"MAINPID={proc.pid}" in ready


def test_only_starts_and_binds_just_the_named_service(tmp_path: Path, redis_url: str) -> None:
    """--only alpha runs alpha and binds its port; beta's port stays free."""
    alpha_port, beta_port = free_port(), free_port()
    proc = spawn(
        ["run", "--only", "alpha"],
        tmp_path=tmp_path,
        redis_url=redis_url,
        env={"TEST_PORTS": f"alpha={alpha_port},beta={beta_port}"},
    )
    try:
        wait_for_port(alpha_port)
        metrics = httpx.get(f"http://127.0.0.1:{alpha_port}/metrics", timeout=5).text
        assert 'twitstack_service_up{service="alpha"} 1.0' in metrics
        assert port_is_free(beta_port)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "beta" not in (tmp_path / "journal").read_text()


def test_port_in_use_exits_non_zero_with_one_line(tmp_path: Path, redis_url: str) -> None:
    """A taken port is one stderr line naming the service and port; exit 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = spawn(
            ["run", "--only", "beta"],
            tmp_path=tmp_path,
            redis_url=redis_url,
            env={"TEST_PORTS": f"beta={port}"},
        )
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert stderr.strip().splitlines() == [
        f"twitstack: beta metrics: port {port} on 127.0.0.1 is already in use"
    ]


def test_unreachable_redis_fails_with_a_hint_about_demo(tmp_path: Path) -> None:
    """Without Redis the daemon logs its retries, then exits 1 with a one-line hint."""
    proc = spawn(
        ["run"],
        tmp_path=tmp_path,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        env={"TWITSTACK_SUPERVISOR__REDIS_STARTUP_TIMEOUT_S": "1"},
    )
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    (line,) = stderr.strip().splitlines()
    assert line.startswith("twitstack: cannot reach Redis at redis://127.0.0.1:")
    assert "twitstack demo" in line
    assert '"event": "redis.unavailable"' in stdout
    assert '"retries_remaining"' in stdout
