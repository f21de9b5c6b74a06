"""Start→ready, idle RSS and SIGTERM→exit of the real `twitstack run`, beside bare references.

Usage: python bench/daemon_lifecycle.py [--rounds 3] [--warmup 5] [--json]

Every row is a fresh subprocess against one private redis-server (no AOF) on loopback:
- `twitstack run` (all three services) and `twitstack run --only writer`: ready = the READY=1
  datagram the daemon sends to $NOTIFY_SOCKET (what systemd waits for), which it sends after
  every service has started;
- a bare uvicorn + Starlette app with one route (the floor for "an HTTP daemon in Python"):
  ready = its first 200;
- a bare `python -c "import anyio; ..."` process: ready = its first line on stdout.
Idle RSS is VmRSS from /proc after `--warmup` seconds of idling; SIGTERM→exit is the time from
the signal until the process is reaped. Medians over `--rounds`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from common import free_port, redis_server

READY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 60.0

BARE_UVICORN = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
async def ok(request): return PlainTextResponse("ok")
app = Starlette(routes=[Route("/", ok)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""
BARE_ANYIO = """
import anyio, signal
async def main():
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        print("ready", flush=True)
        async for _ in signals:
            return
anyio.run(main)
"""


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def twitstack_command() -> list[str]:
    script = shutil.which("twitstack")
    return [script] if script else [sys.executable, "-m", "twitstack"]


def wait_http(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        time.sleep(0.005)
    raise RuntimeError(f"{url} never answered")


def measure(spawn: Callable[[], tuple[subprocess.Popen[bytes], Callable[[], None]]],
            warmup_s: float) -> tuple[float, float, float]:  # fmt: skip
    """(start→ready s, idle RSS MiB, SIGTERM→exit s) of one fresh process."""
    started = time.perf_counter()
    process, wait_ready = spawn()
    try:
        wait_ready()
        ready_s = time.perf_counter() - started
        time.sleep(warmup_s)
        rss = rss_mb(process.pid)
        signalled = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=EXIT_TIMEOUT_S)
        exit_s = time.perf_counter() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # uvicorn (>= 0.29) re-raises the signal after its graceful shutdown: -15 is its clean exit.
    if process.returncode not in (0, -signal.SIGTERM):
        raise RuntimeError(f"exit code {process.returncode} after SIGTERM")
    return ready_s, rss, exit_s


def twitstack_spawner(
    redis_url: str, directory: Path, only: str | None
) -> Callable[[], tuple[subprocess.Popen[bytes], Callable[[], None]]]:
    def spawn() -> tuple[subprocess.Popen[bytes], Callable[[], None]]:
        notify_path = directory / f"notify-{time.monotonic_ns()}.sock"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        notify.settimeout(READY_TIMEOUT_S)
        config = directory / "empty.toml"
        config.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWITSTACK_")}
        env.update({
            "TWITSTACK_CONFIG": str(config), "TWITSTACK_ENV": "prod",
            "TWITSTACK_REDIS_URL": redis_url, "TWITSTACK_DATA_DIR": str(directory / "data"),
            "TWITSTACK_API_HOST": "127.0.0.1", "TWITSTACK_API_PORT": str(free_port()),
            "TWITSTACK_SUPERVISOR__METRICS_HOST": "127.0.0.1",
            "TWITSTACK_WRITER__METRICS_PORT": "0", "TWITSTACK_SCRAPER__METRICS_PORT": "0",
            "NOTIFY_SOCKET": str(notify_path),
        })  # fmt: skip
        args = ["run", "--only", only] if only else ["run"]
        process = subprocess.Popen(
            [*twitstack_command(), *args], env=env, cwd=directory,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def wait_ready() -> None:
            try:
                for _ in range(1000):
                    if b"READY=1" in notify.recv(4096):
                        return
                raise RuntimeError("no READY=1")
            finally:
                notify.close()
                notify_path.unlink(missing_ok=True)

        return process, wait_ready

    return spawn


def uvicorn_spawner() -> tuple[subprocess.Popen[bytes], Callable[[], None]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", BARE_UVICORN, str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return process, lambda: wait_http(f"http://127.0.0.1:{port}/", process)


def anyio_spawner() -> tuple[subprocess.Popen[bytes], Callable[[], None]]:
    process = subprocess.Popen([sys.executable, "-c", BARE_ANYIO], stdout=subprocess.PIPE)

    def wait_ready() -> None:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the bare anyio process did not start")

    return process, wait_ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=5.0, help="idle seconds before RSS")
    parser.add_argument("--json", action="store_true", help="also print one RESULT json line")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with redis_server() as redis_url, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        rows = {
            "twitstack run (all services)": twitstack_spawner(redis_url, directory, None),
            "twitstack run --only writer": twitstack_spawner(redis_url, directory, "writer"),
            "bare uvicorn + Starlette": uvicorn_spawner,
            "bare python + anyio": anyio_spawner,
        }
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in rows}
        for _ in range(args.rounds):
            for name, spawn in rows.items():  # interleaved, so drift hits every row alike
                try:
                    samples[name].append(measure(spawn, args.warmup))
                except RuntimeError as exc:
                    raise SystemExit(f"{name}: {exc}") from None
    print(f"{args.rounds} rounds, medians; idle RSS after {args.warmup:g} s")
    print(f"{'process':<30} {'start→ready s':>14} {'idle RSS MiB':>13} {'SIGTERM→exit s':>15}")
    for name, rounds in samples.items():
        ready, rss, exit_s = (statistics.median(col) for col in zip(*rounds, strict=True))
        results[name] = {"ready_s": ready, "rss_mb": rss, "exit_s": exit_s}
        print(f"{name:<30} {ready:>14.2f} {rss:>13.1f} {exit_s:>15.3f}")
    if args.json:
        print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
