"""The throughput rig: pinned processes, the minimal fake X, and what a run costs.

Consumers run on CPU 0, redis-server and the minimal fake X on CPU 1 (when this process may use
both), so a consumer's CPU is its own and the server side is never starved by it. A `Sample`
is one consumer's run of N jobs: jobs/s (GO until the fake X answered the Nth post), the
worker's CPU (utime + stime of every thread, from /proc/<pid>/stat), Redis commands
(INFO commandstats delta, by command; the rig's own INFO and polling calls taken out) and
Redis CPU (INFO cpu delta).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from common import free_port, pin_to, wait_for_fake_x

HERE = Path(__file__).resolve().parent
CONSUMER_CPU, SERVER_CPU = 0, 1
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


@dataclass
class RedisCost:
    calls: dict[str, int]
    cpu_s: float

    @classmethod
    def read(cls, client: redis.Redis) -> RedisCost:
        stats = client.info("commandstats")
        calls = {
            name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()
        }
        cpu = client.info("cpu")
        return cls(calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]))


@dataclass
class Sample:
    jobs: int
    seconds: float
    worker_cpu_s: float
    redis_cpu_s: float
    calls: dict[str, int] = field(default_factory=dict)
    posts: int = 0  # posts the fake X holds afterwards (> jobs = a double send)

    @property
    def per_s(self) -> float:
        return self.jobs / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.worker_cpu_s * 1e6 / self.jobs

    @property
    def redis_us(self) -> float:
        return self.redis_cpu_s * 1e6 / self.jobs

    @property
    def lua(self) -> int:
        """Script calls: one round trip each, however many commands run inside."""
        return sum(v for k, v in self.calls.items() if k in ("evalsha", "eval", "fcall"))

    @property
    def cmds(self) -> float:
        return sum(self.calls.values()) / self.jobs


class Rig:
    """One private Redis and one minimal fake X, both on the server CPU."""

    def __init__(self, redis_url: str, base_url: str) -> None:
        self.redis_url, self.base_url = redis_url, base_url
        self.redis = redis.Redis.from_url(redis_url)

    def reset(self) -> None:
        self.redis.flushdb()
        httpx.post(self.base_url + "/_reset", timeout=10).raise_for_status()

    def fake_stats(self) -> dict[str, float]:
        stats: dict[str, float] = httpx.get(self.base_url + "/_stats", timeout=10).json()
        return stats

    def fake_times(self) -> dict[str, float]:
        times: dict[str, float] = httpx.get(self.base_url + "/_times", timeout=30).json()
        return times

    def measure(self, pid: int, jobs: int, go: Callable[[], float],
                wait: Callable[[], dict[str, int]]) -> Sample:  # fmt: skip
        """Run one consumer's N jobs: `go` starts them (returns the wall time it did), `wait`
        returns when they are done, with the commands the rig itself sent meanwhile."""
        cpu, cost = process_cpu_s(pid), RedisCost.read(self.redis)
        started = go()
        own = wait()
        cpu_after, after = process_cpu_s(pid), RedisCost.read(self.redis)
        stats = self.fake_stats()
        own = {**own, "info": own.get("info", 0) + 2}  # RedisCost.read's own two INFOs
        calls = {}
        for name, count in after.calls.items():
            delta = count - cost.calls.get(name, 0) - own.get(name, 0)
            if delta > 0:
                calls[name] = delta
        return Sample(jobs, stats["last"] - started, cpu_after - cpu, after.cpu_s - cost.cpu_s,
                      calls, int(stats["posts"]))  # fmt: skip


@contextmanager
def minimal_x() -> Iterator[str]:
    """The minimal fake X (bench/minimal_x.py) on the server CPU; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "minimal_x.py"), "serve", str(port)],
        preexec_fn=pin_to(SERVER_CPU),
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_fake_x(process, base_url, "the minimal fake X")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def fake_ceiling(base_url: str, seconds: float, connections: int) -> float:
    """Requests/s the minimal fake X answers alone, loaded from the consumer CPU by the
    cheapest client there is (raw asyncio keep-alive, no HTTP library)."""
    result = subprocess.run(
        [sys.executable, str(HERE / "minimal_x.py"), "load", base_url, str(seconds),
         str(connections)],
        check=True, capture_output=True, text=True, preexec_fn=pin_to(CONSUMER_CPU),
    )  # fmt: skip
    done, elapsed = result.stdout.split()
    httpx.post(base_url + "/_reset", timeout=10).raise_for_status()
    return int(done) / float(elapsed)


class Child:
    """A consumer process speaking the READY / GO / DONE protocol on stdin/stdout."""

    def __init__(self, args: list[str], timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            preexec_fn=pin_to(CONSUMER_CPU),
        )  # fmt: skip
        self.expect("READY")

    def expect(self, word: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith(word):
            self.process.kill()
            raise SystemExit(f"{self.process.args!r}: expected {word}, got {line!r}")
        return line

    def say(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("GO\n")
        self.process.stdin.flush()

    def close(self) -> None:
        try:
            self.say()
            self.process.wait(timeout=self.timeout_s)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
