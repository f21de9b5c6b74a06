"""The processes of the chaos scenario: the fakes' child process and `twitstack run` daemons."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
import httpx
from anyio.abc import Process

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def twitstack_command() -> list[str]:
    """The installed console script, as users run it (or `python -m twitstack` without it)."""
    script = shutil.which("twitstack")
    return [script] if script else [sys.executable, "-m", "twitstack"]


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The test's environment without any TWITSTACK_* of its own, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWITSTACK_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


@dataclass(frozen=True)
class FakePorts:
    """Where the fakes' child process listens."""

    xapi: int
    graphql: int

    @property
    def xapi_url(self) -> str:
        return f"http://127.0.0.1:{self.xapi}"

    @property
    def graphql_url(self) -> str:
        return f"http://127.0.0.1:{self.graphql}"


async def start_fakes(log_path: Path) -> tuple[Process, FakePorts]:
    """Start `tests.gate.fakes` and read the ports it prints."""
    log = log_path.open("ab")
    process = await anyio.open_process(
        [sys.executable, "-m", "tests.gate.fakes"],
        cwd=REPO,
        env=clean_env({}),
        stdout=subprocess.PIPE,
        stderr=log,
    )
    log.close()
    assert process.stdout is not None
    buffer = b""
    with anyio.fail_after(READY_TIMEOUT_S):
        while b"\n" not in buffer:
            buffer += await process.stdout.receive()
    ports = json.loads(buffer.split(b"\n", 1)[0])
    return process, FakePorts(xapi=int(ports["xapi"]), graphql=int(ports["graphql"]))


async def stop_process(process: Process) -> int | None:
    """SIGTERM, then SIGKILL if it does not exit within STOP_TIMEOUT_S."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(STOP_TIMEOUT_S):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode


@dataclass
class Daemon:
    """One `twitstack run ...` process that the scenario kills and restarts."""

    name: str
    args: list[str]
    env: dict[str, str]
    ready_url: str
    log_path: Path
    process: Process | None = None
    kills: int = 0
    # Exits nobody asked for (crash loop, start-up failure): each is a finding.
    unexpected_exits: list[int] = field(default_factory=list)
    _log: IO[bytes] | None = None

    async def start(self) -> None:
        """Spawn a new incarnation (returns at once; see `wait_ready`)."""
        self._note_unexpected_exit()
        self._log = self.log_path.open("ab")
        self.process = await anyio.open_process(
            [*twitstack_command(), *self.args],
            cwd=self.log_path.parent,
            env=clean_env(self.env),
            stdout=self._log,
            stderr=self._log,
        )

    def _note_unexpected_exit(self) -> None:
        if self.process is not None and self.process.returncode is not None:
            self.unexpected_exits.append(self.process.returncode)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def check_alive(self) -> bool:
        """False (and the exit recorded) if the process ended without being told to."""
        if self.process is not None and self.process.returncode is not None:
            self._note_unexpected_exit()
            return False
        return self.process is not None

    async def kill9(self) -> None:
        """SIGKILL and reap; the caller restarts."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
            self.kills += 1
            self.process = None
        else:
            self._note_unexpected_exit()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until `ready_url` answers 200 (the daemon's services are up)."""
        with anyio.fail_after(timeout_s):
            async with httpx.AsyncClient(timeout=2) as client:
                for _ in range(int(timeout_s / 0.1) + 1):
                    try:
                        if (await client.get(self.ready_url)).status_code == 200:
                            return
                    except httpx.HTTPError:
                        pass
                    if self.process is not None and self.process.returncode is not None:
                        raise AssertionError(f"{self.name} exited: see {self.log_path}")
                    await anyio.sleep(0.1)

    async def stop(self) -> int | None:
        """Graceful stop (SIGTERM); the exit code."""
        if self.process is None:
            return None
        code = await stop_process(self.process)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code


async def run_cli(args: list[str], env: dict[str, str], cwd: Path, stdin: bytes = b"") -> str:
    """One `twitstack ...` command; its stdout, or an AssertionError with stderr."""
    with anyio.fail_after(60):
        result = await anyio.run_process(
            [*twitstack_command(), *args], input=stdin, env=clean_env(env), cwd=cwd, check=False
        )
    if result.returncode != 0:
        raise AssertionError(f"twitstack {' '.join(args)}: {result.stderr.decode()}")
    return result.stdout.decode()


def metric_sum(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """Sum of the samples of `name` (with these label values) in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, label_text = head.partition("{")
        if sample != name:
            continue
        found = _labels(label_text.rstrip("}"))
        if all(found.get(k) == v for k, v in (labels or {}).items()):
            total += float(value)
    return total


def _labels(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out
