"""`twitstack dlq list|retry|purge` against real Redis, with the moderation audit log."""

from __future__ import annotations

import json
import time

import pytest
from redis.asyncio import Redis

from tests.ops.conftest import invoke, lines, run_async
from twitstack.core.config import Settings
from twitstack.moderation.audit import AuditEntry, AuditLog
from twitstack.moderation.db import open_database
from twitstack.moderation.dead_letters import DeadLetterBox
from twitstack.ops.dead_letter_tools import cli_actor
from twitstack.writes import keys
from twitstack.writes.queue import ReliableQueue

LONG_DM = "the launch code is 0000 and nobody must ever know it"
TWEET = json.dumps({"action": "tweet", "payload": {"text": "x" * 300}}).encode()
DM = json.dumps({"action": "dm", "payload": {"recipient_id": "1001", "text": LONG_DM}}).encode()
BINARY = b"\xff\xfe not text"


async def _dead_letter(redis_url: str, *messages: bytes) -> list[str]:
    """Dead-letter `messages` the way the writer does; the UI's ids of the entries, in order."""
    redis = Redis.from_url(redis_url)
    try:
        queue = ReliableQueue(redis, "writer-a")
        await queue.heartbeat()
        for message in messages:
            await redis.rpush(keys.WRITE_QUEUE, message)
            taken = await queue.take(1)
            assert taken == message
            await queue.dead_letter(taken, reason="invalid_payload", detail="payload.text: long")
        return [entry.id for entry in await DeadLetterBox(redis).list()]
    finally:
        await redis.aclose()


async def _redis_lists(redis_url: str) -> tuple[list[bytes], int]:
    redis = Redis.from_url(redis_url)
    try:
        return await redis.lrange(keys.WRITE_QUEUE, 0, -1), await redis.llen(keys.DEAD_LETTER)
    finally:
        await redis.aclose()


def _audit(settings: Settings) -> list[AuditEntry]:
    async def read() -> list[AuditEntry]:
        path = settings.state_dir / settings.moderation.db_filename
        async with open_database(path) as db:
            return await AuditLog(db, time.time).page(limit=50, offset=0)

    return run_async(read)


def test_list_shows_ids_reasons_and_previews_but_never_a_whole_dm(
    settings: Settings, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Human and JSON listings carry the UI's ids; the DM text is cut to a short preview."""
    ids = run_async(lambda: _dead_letter(redis_url, TWEET, DM, BINARY))
    assert invoke(settings, "dlq", "list") == 0
    out = capsys.readouterr().out
    assert lines(out)[0] == "3 dead letters"
    assert [line.split()[0] for line in lines(out)[1:]] == ids
    assert "invalid_payload" in out
    assert "dm to 1001 'the launch code is …'" in out
    assert LONG_DM not in out
    assert "[not retryable]" in lines(out)[3]

    assert invoke(settings, "dlq", "list", "--limit", "2", "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["total"] == 3
    assert [entry["id"] for entry in listing["entries"]] == ids[:2]
    assert LONG_DM not in json.dumps(listing)
    first = listing["entries"][0]
    assert first["reason"] == "invalid_payload"
    assert first["consumer"] == "writer-a"
    assert first["time"].endswith("Z")
    assert first["retryable"] is True


def test_retry_requeues_the_original_message_and_audits_it(
    settings: Settings, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exact original bytes go back on write_queue; the entry is gone; one audit row."""
    _, dm_id = run_async(lambda: _dead_letter(redis_url, TWEET, DM))
    assert invoke(settings, "dlq", "retry", dm_id) == 0
    assert capsys.readouterr().out.strip() == f"retried {dm_id} (invalid_payload)"
    queued, dead = run_async(lambda: _redis_lists(redis_url))
    assert queued == [DM]
    assert dead == 1
    [row] = _audit(settings)
    assert (row.actor, row.action, row.target) == (cli_actor(), "dead_letter.retry", dm_id)
    assert row.actor.startswith("cli:")
    assert row.detail == {"reason": "invalid_payload"}


def test_purge_removes_the_entry_and_audits_it_as_the_ui_does(
    settings: Settings, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Purge drops the entry without requeueing; audited as the UI's discard."""
    tweet_id, _ = run_async(lambda: _dead_letter(redis_url, TWEET, DM))
    assert invoke(settings, "dlq", "purge", tweet_id) == 0
    queued, dead = run_async(lambda: _redis_lists(redis_url))
    assert (queued, dead) == ([], 1)
    [row] = _audit(settings)
    assert (row.actor, row.action, row.target) == (cli_actor(), "dead_letter.discard", tweet_id)
    assert invoke(settings, "dlq", "purge", tweet_id) == 1
    assert f"no dead letter with id {tweet_id!r}" in capsys.readouterr().err
    assert len(_audit(settings)) == 1


def test_retry_all_skips_binary_entries_and_exits_1(
    settings: Settings, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text messages are requeued in order; a non-UTF-8 one stays for purge; each audited."""
    ids = run_async(lambda: _dead_letter(redis_url, TWEET, BINARY, DM))
    assert invoke(settings, "dlq", "retry", "--all") == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == "retried 2 dead letters, skipped 1"
    assert f"skipped {ids[1]}: its message is not UTF-8 text" in captured.err
    queued, dead = run_async(lambda: _redis_lists(redis_url))
    assert (queued, dead) == ([TWEET, DM], 1)
    assert sorted(row.target for row in _audit(settings)) == sorted([ids[0], ids[2]])
    assert invoke(settings, "dlq", "retry", ids[1]) == 1
    assert "cannot retry" in capsys.readouterr().err
    assert invoke(settings, "dlq", "purge", "--all") == 0
    assert capsys.readouterr().out.strip() == "purged 1 dead letters"
    assert run_async(lambda: _redis_lists(redis_url))[1] == 0
    newest = _audit(settings)[0]
    assert (newest.action, newest.target) == ("dead_letter.discard", ids[1])


def test_retry_needs_an_id_or_all(settings: Settings) -> None:
    """argparse refuses `dlq retry` without a target, and with both."""
    with pytest.raises(SystemExit):
        invoke(settings, "dlq", "retry")
    with pytest.raises(SystemExit):
        invoke(settings, "dlq", "retry", "abc", "--all")
