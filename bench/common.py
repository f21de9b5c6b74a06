"""Helpers every bench shares: a private redis-server, the sandbox fake X, writer settings.

`python bench/common.py --serve-fake PORT LIMIT WINDOW LATENCY` is the sandbox fake X's child
process body (see `fake_x`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import redis

from twitstack.core.config import Settings, load
from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN, DEFAULT_CLIENT_ID
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.signing import ApprovalSigner
from twitstack.writes.wire import encode_write_request

START_TIMEOUT_S = 15.0
READY_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 600.0


def can_pin() -> bool:
    """Pinning needs two CPUs this process may use (consumer on 0, Redis + fake X on 1)."""
    return hasattr(os, "sched_setaffinity") and {0, 1} <= os.sched_getaffinity(0)


def pin_to(cpu: int | None) -> Callable[[], None] | None:
    """A `preexec_fn` that pins the child (and every thread it starts) to `cpu`."""
    if cpu is None or not can_pin():
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_notified(
    args: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stderr_path: Path,
    cpu: int | None,
    name: str,
) -> subprocess.Popen[bytes]:
    """Start a daemon pinned to `cpu` with a NOTIFY_SOCKET of its own; return it once it sent
    READY=1 (what systemd's Type=notify waits for). Its stdout goes to /dev/null (JSON logs:
    their cost counts, a terminal's does not); stderr is kept for the reason it did not start.
    """
    notify_path = cwd / f"notify-{time.monotonic_ns()}.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(READY_TIMEOUT_S)
    process = subprocess.Popen(
        args, cwd=cwd, env={**env, "NOTIFY_SOCKET": str(notify_path)},
        stdout=subprocess.DEVNULL, stderr=stderr_path.open("wb"), preexec_fn=pin_to(cpu),
    )  # fmt: skip
    try:
        for _ in range(1000):
            if b"READY=1" in notify.recv(4096):
                break
    except TimeoutError:
        stop_daemon(process)
        tail = stderr_path.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{name} never sent READY=1:\n{tail}") from None
    finally:
        notify.close()
        notify_path.unlink(missing_ok=True)
    return process


def stop_daemon(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within a minute."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def redis_server(cpu: int | None = None) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (pinned to `cpu`); yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                "--appendonly", "no", "--dir", directory]  # fmt: skip
        process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pin_to(cpu)
        )
        client = redis.Redis(port=port)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            for _ in range(int(START_TIMEOUT_S / 0.02)):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            client.close()
            process.kill()
            process.wait()


@contextmanager
def fake_x(*, limit: int = 0, window_s: float = 900.0, latency_s: float = 0.0) -> Iterator[str]:
    """The fake X API in a child process (it must not share our CPU); yields its base URL."""
    port = free_port()
    here = os.path.abspath(__file__)
    args = [sys.executable, here, "--serve-fake", str(port), str(limit), str(window_s),
            str(latency_s)]  # fmt: skip
    process = subprocess.Popen(args)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_fake_x(process, base_url, "the fake X API")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_for_fake_x(process: subprocess.Popen[bytes], base_url: str, name: str) -> None:
    """Return once a fake X started as `process` answers; SystemExit if it exits or never does."""
    for _ in range(int(START_TIMEOUT_S / 0.05)):
        try:
            if httpx.get(base_url + "/2/openapi.json", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"{name} exited")
        time.sleep(0.05)
    raise SystemExit(f"{name} did not start")


def serve_fake(port: int, limit: int, window_s: float, latency_s: float) -> None:
    """Child process body: the fake X API, optionally windowed and slowed like the real X."""
    from twitstack.core.http_server import serve_asgi
    from twitstack.sandbox.xapi.app import create_xapi_app
    from twitstack.sandbox.xapi.config import (
        Endpoint,
        FaultKind,
        FaultSettings,
        LimitScope,
        WindowLimit,
        XApiSandboxConfig,
    )

    window = (WindowLimit(scope=LimitScope.USER, limit=limit, window_s=window_s),)
    config = XApiSandboxConfig(
        rate_limits={Endpoint.CREATE_TWEET: window if limit else ()},  # () = unlimited
        duplicate_lookback_posts=0,  # texts are unique anyway; keep the fake's work flat
        faults=FaultSettings(rates={FaultKind.LATENCY: 1.0}, latency_s=latency_s)
        if latency_s
        else FaultSettings(),
    )
    app = create_xapi_app(config)
    anyio.run(lambda: serve_asgi(app, host="127.0.0.1", port=port, name="bench-fake-x"))


def writer_settings(redis_url: str, base_url: str, public_key: str, **writer: object) -> Settings:
    """Settings for a bench writer: one OAuth2 account at the fake, no metrics port."""
    section: dict[str, object] = {
        "x_api_base_url": base_url,
        "accounts": [{"name": "default", "user_id": "1000", "client_id": DEFAULT_CLIENT_ID,
                      "access_token_secret": "BENCH_ACCESS"}],
        "approval_public_keys": [public_key],
        "metrics_port": None,
        "schedule_poll_s": 0.05,
        "take_timeout_s": 0.2,
    }  # fmt: skip
    section.update(writer)
    return load(os.devnull, env_file=None, redis_url=redis_url, writer=section).settings


async def bench_secret(name: str) -> str | None:
    return DEFAULT_BEARER_TOKEN if name == "BENCH_ACCESS" else None


def approved_tweets(signer: ApprovalSigner, count: int, tag: str) -> list[bytes]:
    return [
        encode_write_request(
            signer.approve(
                WriteRequest(action=WriteAction.TWEET, payload={"text": f"{tag} {i}"}),
                approver="bench",
            )
        )
        for i in range(count)
    ]


def reset_phase(redis_client: redis.Redis, base_url: str) -> None:
    """Both sides start from an empty Redis and an empty fake X."""
    redis_client.flushdb()
    httpx.post(base_url + "/_sandbox/reset", timeout=10).raise_for_status()


if __name__ == "__main__":
    if sys.argv[1:2] != ["--serve-fake"] or len(sys.argv) != 6:
        raise SystemExit("usage: python bench/common.py --serve-fake PORT LIMIT WINDOW LATENCY")
    serve_fake(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
