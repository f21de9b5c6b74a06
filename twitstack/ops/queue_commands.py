"""Handlers of `twitstack enqueue`, `queue stats` and `dlq list|retry|purge`."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from twitstack.core.config import Settings
from twitstack.core.errors import RedisUnavailableError
from twitstack.core.logging import get_logger
from twitstack.core.redis import create_redis, wait_for_redis
from twitstack.moderation.audit import AuditLog
from twitstack.moderation.db import open_database
from twitstack.moderation.dead_letters import DeadLetter, DeadLetterBox
from twitstack.ops.dead_letter_tools import (
    DeadLetterOutcome,
    DeadLetterTools,
    cli_actor,
    list_dead_letters,
)
from twitstack.ops.media_files import attachments_for
from twitstack.ops.queue_tools import (
    QueueStats,
    build_message,
    delete_payload,
    dm_payload,
    enqueue,
    queue_stats,
    thread_payload,
    tweet_payload,
)
from twitstack.writes.errors import WireFormatError
from twitstack.writes.models import ModerationStatus, WriteAction

_log = get_logger("twitstack.ops.enqueue")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
# A CLI should not sit in open_redis's start-up backoff as long as the daemon does.
REDIS_WAIT_S = 5.0

_ONE_LINE_ERRORS: dict[DeadLetterOutcome, str] = {
    DeadLetterOutcome.NOT_FOUND: "it is gone",
    DeadLetterOutcome.NOT_RETRYABLE: "its message is not UTF-8 text and cannot be re-sent; "
    "purge it",
    DeadLetterOutcome.ALREADY_HANDLED: "someone else retried or purged it meanwhile",
}


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    print(f"twitstack: {message}", file=sys.stderr)
    return code


@asynccontextmanager
async def _redis(settings: Settings) -> AsyncIterator[Redis]:
    # Not open_redis: its "redis.connected" info line would land on stdout between the
    # command's own output (e.g. the request id a script captures).
    redis = create_redis(settings.redis_url, max_connections=4)
    try:
        wait_s = min(REDIS_WAIT_S, settings.supervisor.redis_startup_timeout_s)
        await wait_for_redis(redis, settings.redis_url, timeout_s=wait_s)
        yield redis
    finally:
        with anyio.CancelScope(shield=True):
            await redis.aclose()


def _run(work: Callable[[], Awaitable[int]]) -> int:
    """Run `work`, turning Redis trouble into one line on stderr and exit status 1."""
    try:
        return anyio.run(work)
    except RedisUnavailableError as exc:
        return _fail(str(exc))
    except RedisError as exc:
        return _fail(f"Redis failed mid-command ({type(exc).__name__}: {exc})")
    except (OSError, sqlite3.Error) as exc:
        # The data directory or the moderation database (the audit log) is not usable.
        return _fail(f"{type(exc).__name__}: {exc}")


def _text_arg(value: str) -> str:
    # "-" reads the text from stdin, which keeps a DM's text out of `ps` and shell history.
    return sys.stdin.read().rstrip("\n") if value == "-" else value


def enqueue_command(args: argparse.Namespace, settings: Settings) -> int:
    """`twitstack enqueue tweet|dm|delete`: validate like the queue does, RPUSH, print the id."""
    action = WriteAction(args.action)
    attachments: list[dict[str, object]] = []
    if action is WriteAction.TWEET:
        try:
            attachments = attachments_for(args, settings)
        except (ValueError, OSError) as exc:
            return _fail(str(exc), EXIT_USAGE)
    try:
        if action is WriteAction.TWEET:
            payload = tweet_payload(
                _text_arg(args.text), reply_to=args.reply_to, quote=args.quote,
                poll=args.poll, poll_minutes=args.poll_minutes,
            )  # fmt: skip
            if attachments:
                payload["media"] = {"attachments": attachments}
                if not payload["text"].strip():
                    del payload["text"]  # media alone is a post
        elif action is WriteAction.THREAD:
            payload = thread_payload(args.parts, reply_to=args.reply_to)
        elif action is WriteAction.DM:
            payload = dm_payload(args.recipient_id, _text_arg(args.text))
        else:
            payload = delete_payload(args.tweet_id)
        request, message = build_message(
            action,
            payload,
            account=args.account or settings.writer.default_account,
            author=args.author if args.author is not None else cli_actor(),
            not_before=args.not_before,
            expires_at=args.expires_at,
        )
    except WireFormatError as exc:
        return _fail(exc.message, EXIT_USAGE)

    async def work() -> int:
        async with _redis(settings) as redis:
            await enqueue(redis, message)
        return EXIT_OK

    code = _run(work)
    if code == EXIT_OK:
        _log.info(
            "ops.request_enqueued",
            request_id=request.id,
            account=request.account,
            action=str(request.action),
            author=request.author,
        )
        print(request.id)
    return code


def stats_command(args: argparse.Namespace, settings: Settings) -> int:
    """`twitstack queue stats [--json]`."""

    async def work() -> int:
        async with _redis(settings) as redis:
            stats = await queue_stats(redis)
        if args.json:
            print(json.dumps(stats.to_json(), indent=2))
        else:
            print(render_stats(stats))
        return EXIT_OK

    return _run(work)


def render_stats(stats: QueueStats) -> str:
    """The human form of `queue stats`."""
    d = stats.depths
    lines = [
        f"write_queue     {d.queued} queued, {d.processing} in flight, "
        f"{d.dead} dead letters, {d.scheduled} scheduled",
        f"oldest pending  {_age(stats.oldest_pending_age_s)} (waiting for a moderator)",
        f"oldest queued   {_age(stats.oldest_queued_age_s)} (waiting for a writer)",
        "requests        "
        + "  ".join(f"{state.value} {stats.states.get(state, 0)}" for state in ModerationStatus),
    ]
    for consumer in stats.consumers:
        alive = "alive" if consumer.alive else "heartbeat lapsed"
        lines.append(f"consumer        {consumer.name}: {consumer.in_flight} in flight ({alive})")
    return "\n".join(lines)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = (
        [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(minutes)
    )
    return " ".join([*parts, f"{secs}s"])


def dlq_list_command(args: argparse.Namespace, settings: Settings) -> int:
    """`twitstack dlq list [--limit N] [--json]`: previews only, never whole messages."""

    async def work() -> int:
        async with _redis(settings) as redis:
            total, entries = await list_dead_letters(DeadLetterBox(redis), args.limit)
        if args.json:
            body: dict[str, Any] = {"total": total, "entries": [e.to_json() for e in entries]}
            print(json.dumps(body, indent=2, ensure_ascii=False))
            return EXIT_OK
        print(
            f"{total} dead letters" + (f" (showing {len(entries)})" if total > len(entries) else "")
        )
        for e in entries:
            retry = "" if e.retryable else " [not retryable]"
            print(f"{e.id}  {e.time or '-'}  {e.reason}  {e.preview}{retry}  ({e.detail or '-'})")
        return EXIT_OK

    return _run(work)


@asynccontextmanager
async def _tools(settings: Settings) -> AsyncIterator[DeadLetterTools]:
    data_dir = settings.state_dir
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The audit log is opened first: a change must never happen without its audit row.
    async with (
        open_database(data_dir / settings.moderation.db_filename) as db,
        _redis(settings) as redis,
    ):
        yield DeadLetterTools(DeadLetterBox(redis), AuditLog(db, time.time), actor=cli_actor())


Operation = Callable[[DeadLetterTools, DeadLetter], Awaitable[DeadLetterOutcome]]


def _dlq_change(
    verb: str, past: str, operation: Operation
) -> Callable[[argparse.Namespace, Settings], int]:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        async def work() -> int:
            async with _tools(settings) as tools:
                if args.all:
                    return await _change_all(tools, past, operation)
                entry = await tools.find(args.entry_id)
                if entry is None:
                    return _fail(
                        f"no dead letter with id {args.entry_id!r} (see `twitstack dlq list`)"
                    )
                outcome = await operation(tools, entry)
                if outcome is not DeadLetterOutcome.DONE:
                    return _fail(f"cannot {verb} {entry.id}: {_ONE_LINE_ERRORS[outcome]}")
                print(f"{past} {entry.id} ({entry.reason})")
                return EXIT_OK

        return _run(work)

    return handler


async def _change_all(tools: DeadLetterTools, past: str, operation: Operation) -> int:
    done = skipped = 0
    # One snapshot: entries that cannot be retried stay put, so re-reading could loop forever.
    for entry in await tools.entries():
        outcome = await operation(tools, entry)
        if outcome is DeadLetterOutcome.DONE:
            done += 1
        else:
            skipped += 1
            print(f"skipped {entry.id}: {_ONE_LINE_ERRORS[outcome]}", file=sys.stderr)
    print(f"{past} {done} dead letters" + (f", skipped {skipped}" if skipped else ""))
    return EXIT_OK if not skipped else EXIT_FAILURE


dlq_retry_command = _dlq_change("retry", "retried", DeadLetterTools.retry)
dlq_purge_command = _dlq_change("purge", "purged", DeadLetterTools.purge)
