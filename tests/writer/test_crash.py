"""Crash test with real processes: two `twitstack run --only writer`, kill -9 at every step.

1,000 approved requests (800 tweets, 100 DMs, 100 deletes); one deterministic kill at each
crash point (after BLMOVE, after `sending`, after X accepted, after `executed`), then at least
20 random kill -9s with immediate restarts. Pass: 0 lost, 0 duplicate posts or DMs at the fake,
nothing left `sending`/`unknown`, processing lists and the queue empty.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import PUBLIC_KEY, SECRETS, SIGNER, wait_until
from twitstack.core.redis import create_redis
from twitstack.core.sealing import generate_key_ring
from twitstack.sandbox.xapi.config import Endpoint, XApiSandboxConfig
from twitstack.writes import keys, ledger_index
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.token_store import SEALING_KEYS_SECRET
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
CRASH_POINTS = ("after_take", "after_sending", "after_x_accepted", "after_executed")
RANDOM_KILLS = 22


# Every writer process (prod) must open the tokens its predecessors sealed: one shared ring.
SEALING = {SEALING_KEYS_SECRET: generate_key_ring("k1")}


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """No rate limits: this test is about crashes, not windows."""
    unlimited = (Endpoint.CREATE_TWEET, Endpoint.DELETE_TWEET, Endpoint.CREATE_DM,
                 Endpoint.USER_TWEETS, Endpoint.DM_EVENTS)  # fmt: skip
    return XApiSandboxConfig(rate_limits={endpoint: () for endpoint in unlimited})


def write_config(path: Path, redis_url: str, base_url: str, consumer: str) -> Path:
    config = path / f"{consumer}.toml"
    config.write_text(
        f"""
env = "prod"
redis_url = "{redis_url}"
data_dir = "{path / consumer}"

[writer]
x_api_base_url = "{base_url}"
metrics_port = 0
consumer_id = "{consumer}"
concurrency = 4
approval_public_keys = ["{PUBLIC_KEY}"]
read_timeout_s = 2.0
stale_sending_s = 4.0
reconcile_grace_s = 1.0
reconcile_interval_s = 0.3
heartbeat_interval_s = 0.5
heartbeat_ttl_s = 2.0
recovery_interval_s = 0.5
take_timeout_s = 0.2
schedule_poll_s = 0.1

[[writer.accounts]]
name = "default"
user_id = "1000"
client_id = "sandbox-client"
access_token_secret = "DEMO_ACCESS"
"""
    )
    return config


class Writers:
    """The writer processes of the test, restartable by name."""

    def __init__(self, directory: Path, configs: dict[str, Path]) -> None:
        self._directory = directory
        self._configs = configs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.kills = 0

    def start(self, name: str, crash_at: str | None = None) -> None:
        env = {**os.environ, **SECRETS, "TWITSTACK_TESTING": "1", **SEALING}
        env.pop("TWITSTACK_WRITER_CRASH_AT", None)
        if crash_at is not None:
            env["TWITSTACK_WRITER_CRASH_AT"] = crash_at
        log = (self._directory / f"{name}.log").open("ab")
        args = [sys.executable, "-m", "twitstack", "run", "--config", str(self._configs[name]),
                "--only", "writer"]  # fmt: skip
        self.processes[name] = subprocess.Popen(args, env=env, stdout=log, stderr=log)
        log.close()

    def alive(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def kill(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            process.kill()
            self.kills += 1
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def requests_for(sandbox: RunningSandbox) -> list[WriteRequest]:
    victims = [
        sandbox.state.content.create_post("1000", f"to delete {i}", {"text": f"to delete {i}"})
        for i in range(100)
    ]
    requests = [WriteRequest(action=WriteAction.TWEET, payload={"text": f"crash tweet {i}"})
                for i in range(800)]  # fmt: skip
    requests += [
        WriteRequest(
            action=WriteAction.DM, payload={"recipient_id": "1001", "text": f"crash dm {i}"}
        )
        for i in range(100)
    ]
    requests += [
        WriteRequest(action=WriteAction.DELETE, payload={"tweet_id": v.id}) for v in victims
    ]
    random.Random(3).shuffle(requests)
    return [SIGNER.approve(request, approver="alice") for request in requests]


async def _wait_dead(writers: Writers, name: str, timeout_s: float = 60) -> None:
    async def dead() -> bool:
        return not writers.alive(name)

    await wait_until(dead, timeout_s=timeout_s, poll_s=0.05)


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.timeout(400)
async def test_kill_9_at_every_step_loses_and_duplicates_nothing(
    make_redis_server: Callable[..., RedisServer], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """Two writer processes under kill -9: every request executed exactly once."""
    server = make_redis_server(appendonly=True)
    redis: Redis = create_redis(server.url)
    names = ("w1", "w2")
    configs = {n: write_config(tmp_path, server.url, sandbox.base_url, n) for n in names}
    writers = Writers(tmp_path, configs)
    requests = requests_for(sandbox)
    await redis.rpush(keys.WRITE_QUEUE, *[encode_write_request(r) for r in requests])
    rng = random.Random(11)
    try:
        # One deterministic kill at each crash point, two at a time.
        for first, second in (CRASH_POINTS[:2], CRASH_POINTS[2:]):
            writers.start("w1", f"{first}:{rng.randint(3, 30)}")
            writers.start("w2", f"{second}:{rng.randint(3, 30)}")
            for name in names:
                await _wait_dead(writers, name)
                # It died at its crash point, by SIGKILL, not by some error.
                assert writers.processes[name].returncode == -signal.SIGKILL
        writers.start("w1")
        writers.start("w2")
        # Random kill -9s with immediate restarts while work remains.
        for _ in range(RANDOM_KILLS):
            await anyio.sleep(rng.uniform(0.3, 1.0))
            victim = rng.choice(names)
            writers.kill(victim)
            writers.start(victim)

        async def settled() -> bool:
            counts = await ledger_index.counts(redis)
            return counts[S.EXECUTED] + counts[S.FAILED] == len(requests)

        await wait_until(settled, timeout_s=240, poll_s=0.5)
        counts = await ledger_index.counts(redis)
        processing = [await redis.llen(keys.processing_list(n)) for n in names]
        queued = await redis.llen(keys.WRITE_QUEUE)
        dead = await redis.lrange(keys.DEAD_LETTER, 0, -1)
    finally:
        writers.stop_all()
        await redis.aclose()
    content = sandbox.state.content
    assert writers.kills >= 20
    assert counts[S.EXECUTED] == len(requests), counts
    assert counts[S.SENDING] == counts[S.UNKNOWN] == counts[S.NEEDS_REVIEW] == 0
    assert processing == [0, 0]
    assert queued == 0
    assert dead == []
    tweets = {t: n for t, n in content.post_text_counts().items() if t.startswith("crash tweet")}
    assert len(tweets) == 800
    assert max(tweets.values()) == 1
    assert len(content.dms) == 100
    assert max(content.dm_text_counts().values()) == 1
    assert len({d.post_id for d in content.deletions}) == 100
    assert len(content.deletions) == 100
