"""The handlers of `twitstack notify`: read and revive the notifier's dead letters."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from twitstack.core.config import Settings
from twitstack.core.errors import RedisUnavailableError
from twitstack.core.redis import create_redis, wait_for_redis
from twitstack.notifier.checks import CURSOR
from twitstack.notifier.outbox import MAX_DEAD, NotificationOutbox

EXIT_OK, EXIT_FAILURE = 0, 1
_REDIS_WAIT_S = 5.0


@asynccontextmanager
async def _outbox(settings: Settings) -> AsyncIterator[NotificationOutbox]:
    redis: Redis = create_redis(settings.redis_url, max_connections=2)
    try:
        await wait_for_redis(redis, settings.redis_url, timeout_s=_REDIS_WAIT_S)
        yield NotificationOutbox(redis)
    finally:
        with anyio.CancelScope(shield=True):
            await redis.aclose()


def _run(work: Callable[[], Awaitable[int]]) -> int:
    try:
        return anyio.run(work)
    except RedisUnavailableError as exc:
        print(f"twitstack: {exc}", file=sys.stderr)
    except RedisError as exc:
        print(f"twitstack: Redis failed mid-command ({type(exc).__name__})", file=sys.stderr)
    return EXIT_FAILURE


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if epoch else "-"


def status_command(args: argparse.Namespace, settings: Settings) -> int:
    """`twitstack notify status`: what waits, what gave up, where the cursor is."""

    async def work() -> int:
        async with _outbox(settings) as outbox:
            waiting, dead = await outbox.depth()
            cursor = await outbox.state(CURSOR)
        channels = ", ".join(settings.notifier.channels()) or "none configured"
        print(f"channels: {channels}")
        print(f"outbox: {waiting} waiting or retrying")
        print(f"dead letters: {dead}")
        print(f"events cursor: {cursor or '(not started yet)'}")
        return EXIT_OK

    return _run(work)


def dead_list_command(args: argparse.Namespace, settings: Settings) -> int:
    """`twitstack notify dead list`: newest first; the error, never a secret."""

    async def work() -> int:
        async with _outbox(settings) as outbox:
            _, total = await outbox.depth()
            letters = await outbox.dead_letters(max(1, min(args.limit, MAX_DEAD)))
        if args.json:
            rows = [{"id": d.id, "channel": d.channel, "event": d.event, "attempts": d.attempts,
                     "error": d.error, "dead_at": d.dead_at} for d in letters]  # fmt: skip
            print(json.dumps({"total": total, "entries": rows}, indent=2))
            return EXIT_OK
        print(f"{total} dead notifications" + (f" (showing {len(letters)})"
                                              if total > len(letters) else ""))  # fmt: skip
        for d in letters:
            print(f"{d.id}  {_when(d.dead_at)}  {d.channel}  {d.event}  "
                  f"after {d.attempts} attempts: {d.error}")  # fmt: skip
        return EXIT_OK

    return _run(work)


def dead_retry_command(args: argparse.Namespace, settings: Settings) -> int:
    """`twitstack notify dead retry ID|--all`: back into the outbox, attempts reset."""

    async def work() -> int:
        async with _outbox(settings) as outbox:
            letters = await outbox.dead_letters(MAX_DEAD)
            chosen = letters if args.all else [d for d in letters if d.id == args.id]
            if not chosen:
                print(f"twitstack: no dead notification {args.id!r}", file=sys.stderr)
                return EXIT_FAILURE
            revived = [d.id for d in chosen if await outbox.revive(d)]
        for delivery_id in revived:
            print(f"retrying {delivery_id}")
        skipped = len(chosen) - len(revived)
        if skipped:
            print(f"twitstack: {skipped} could not be retried (unreadable, or retried meanwhile)",
                  file=sys.stderr)  # fmt: skip
        return EXIT_OK if revived else EXIT_FAILURE

    return _run(work)
