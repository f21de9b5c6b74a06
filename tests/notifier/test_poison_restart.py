"""A poison event under a real notifier process that is killed (kill -9) while stuck on it and
restarted, as systemd would: the attempts are counted across the restarts, so the event is
quarantined after EVENT_ATTEMPTS of them and the events after it are notified.

Two ways to be stuck: every read of the event fails (its result nests too deep to parse) and
the process is killed after a failure; or processing the event never returns (a hang, injected
into the process) and the process is killed in the middle of it.
"""

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


def _stuck(log: Path) -> bool:
    """Whether the process logged a failed event read, or said it hangs on the poison."""
    text = _text(log)
    return "notifier.loop_failed" in text or HANGING in text


HANGING = "test: hanging on the poison request"
HANG_TEXT = "hang on me"
# `twitstack run --only notifier` where composing a notification about the request whose text
# is HANG_TEXT never returns (the thread sleeps: the whole process hangs, as on a stuck call).
_HANG_WRAPPER = f"""
import sys, time
from twitstack.notifier import compose
from twitstack.cli import main

real = compose.from_events

def from_events(kind, events, records, **kwargs):
    for record in records.values():
        if record is not None and record.request.payload.get("text") == {HANG_TEXT!r}:
            print({HANGING!r}, file=sys.stderr, flush=True)
            time.sleep(3600)
    return real(kind, events, records, **kwargs)

compose.from_events = from_events
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("stuck", ["fails", "hangs"])
async def test_kill_9_while_stuck_on_a_poison_event_does_not_reset_its_attempts(
    stuck: str, tmp_path: Path, redis_url: str
) -> None:
    receiver = WebhookReceiver(HOOK_KEY)
    env = {**os.environ, "TEST_HOOK_URL": f"{receiver.url}/hook", "TEST_HOOK_KEY": HOOK_KEY}
    env = {k: v for k, v in env.items() if not k.startswith("TWITSTACK_")}
    config = _config(tmp_path, redis_url)
    python = [sys.executable, "-m", "twitstack"] if stuck == "fails" else [
        sys.executable, "-c", _HANG_WRAPPER]  # fmt: skip
    args = [*python, "run", "--config", str(config), "--only", "notifier"]
    redis = Redis.from_url(redis_url)
    process: subprocess.Popen[bytes] | None = None
    starts = 0
    try:
        async with receiver.serving():

            def delivered() -> list[str]:
                return [r["id"] for h in receiver.delivered() if h.body["event"] == "needs_review"
                        for r in h.body["requests"]]  # type: ignore[union-attr]  # fmt: skip

            after = ""
            while starts < MAX_STARTS:
                log = tmp_path / f"notifier-{starts}.log"
                process = _start(args, env, log)
                starts += 1
                if starts == 1:
                    # The cursor starts at the stream's end: write the events once it exists.
                    await wait_until(lambda log=log: "notifier.ready" in _text(log))
                    before = await needs_review(redis, "before the poison")
                    if stuck == "fails":
                        # Its result nests too deep to parse: every read of it fails.
                        await redis.xadd(
                            keys.EVENTS,
                            {"id": "poison", "from": "approved", "to": "failed",
                             "time": utcnow().isoformat(), "result": "[" * 100_000},
                        )  # fmt: skip
                    else:
                        await needs_review(redis, HANG_TEXT)
                    after = await needs_review(redis, "after the poison")
                # Stuck on the poison or past it: if stuck, kill -9.
                await wait_until(
                    lambda log=log, after=after: _stuck(log) or after in delivered(),
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
            poison = [i.decode() for i, fields in await redis.xrange(keys.EVENTS)
                      if fields[b"to"] == (b"failed" if stuck == "fails" else b"needs_review")
                      and fields[b"id"] not in (before.encode(), after.encode())]  # fmt: skip
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        entries = [json.loads(raw) for raw in await redis.lrange(keys.QUARANTINE, 0, -1)]
        await redis.aclose()
    [entry] = entries
    assert (entry["source"], [entry["ref"]], entry["reason"]) == (
        "event",
        poison,
        "unprocessable_event",
    )
    why = "RecursionError" if stuck == "fails" else "the notifier stopped while processing it"
    assert entry["detail"].startswith(f"{EVENT_ATTEMPTS} attempts: {why}")
