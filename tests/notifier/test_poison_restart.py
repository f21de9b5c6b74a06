"""A poison event under a real notifier process that is killed (kill -9) while stuck on it and
restarted, as systemd would: the attempts are counted across the restarts, so the event is
quarantined after EVENT_ATTEMPTS of them and the events after it are notified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from tests.notifier.conftest import HOOK_KEY, needs_review
from tests.notifier.receivers import WebhookReceiver, wait_until
from twitstack.notifier.checks import EVENT_ATTEMPTS
from twitstack.writes import keys
from twitstack.writes.models import utcnow

pytestmark = pytest.mark.anyio

# Starts allowed: the first (its batch read fails), one per counted attempt, one to pass over,
# and two to spare. Without a count that survives restarts no number of starts is enough.
MAX_STARTS = EVENT_ATTEMPTS + 4


def _config(directory: Path, redis_url: str) -> Path:
    config = directory / "notifier.toml"
    config.write_text(
        f"""
redis_url = "{redis_url}"
data_dir = "{directory / "data"}"

[notifier]
moderation_base_url = "https://m.example"
check_interval_s = 0.2
retry_initial_s = 0.05
coalesce_window_s = 0

[notifier.webhook]
url_secret = "TEST_HOOK_URL"
signing_key_secret = "TEST_HOOK_KEY"
"""
    )
    return config


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=out)


def _text(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


def _failures(log: Path) -> int:
    """Failed event reads the process logged so far."""
    return _text(log).count("notifier.loop_failed")


async def test_kill_9_while_stuck_on_a_poison_event_does_not_reset_its_attempts(
    tmp_path: Path, redis_url: str
) -> None:
    receiver = WebhookReceiver(HOOK_KEY)
    env = {**os.environ, "TEST_HOOK_URL": f"{receiver.url}/hook", "TEST_HOOK_KEY": HOOK_KEY}
    env = {k: v for k, v in env.items() if not k.startswith("TWITSTACK_")}
    config = _config(tmp_path, redis_url)
    args = [sys.executable, "-m", "twitstack", "run", "--config", str(config), "--only",
            "notifier"]  # fmt: skip
    redis = Redis.from_url(redis_url)
    process: subprocess.Popen[bytes] | None = None
    starts = 0
    try:
        async with receiver.serving():

            def delivered() -> list[str]:
                return [r["id"] for h in receiver.delivered() if h.body["event"] == "needs_review"
                        for r in h.body["requests"]]  # type: ignore[union-attr]  # fmt: skip

            poison = after = ""
            while starts < MAX_STARTS:
                log = tmp_path / f"notifier-{starts}.log"
                process = _start(args, env, log)
                starts += 1
                if starts == 1:
                    # The cursor starts at the stream's end: write the events once it exists.
                    await wait_until(lambda log=log: "notifier.ready" in _text(log))
                    before = await needs_review(redis, "before the poison")
                    # Its result nests too deep to parse: every read of it fails.
                    poison = (await redis.xadd(
                        keys.EVENTS,
                        {"id": "poison", "from": "approved", "to": "failed",
                         "time": utcnow().isoformat(), "result": "[" * 100_000},
                    )).decode()  # fmt: skip
                    after = await needs_review(redis, "after the poison")
                # Stuck on the poison (a failed read logged) or past it: then kill -9.
                await wait_until(
                    lambda log=log, after=after: _failures(log) > 0 or after in delivered(),
                    timeout_s=30,
                )
                if after in delivered():
                    break
                process.kill()
                await anyio.to_thread.run_sync(process.wait)
            assert after in delivered(), f"still stuck on the poison after {starts} starts"
            assert sorted(delivered()) == sorted([before, after])
            # The first start reads the batch; then EVENT_ATTEMPTS starts read the poison alone;
            # the next passes over it.
            assert starts == EVENT_ATTEMPTS + 2
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        entries = [json.loads(raw) for raw in await redis.lrange(keys.QUARANTINE, 0, -1)]
        await redis.aclose()
    [entry] = entries
    assert (entry["source"], entry["ref"], entry["reason"]) == (
        "event",
        poison,
        "unprocessable_event",
    )
    assert entry["detail"].startswith(f"{EVENT_ATTEMPTS} attempts: RecursionError")
