"""Files named on `twitstack enqueue tweet --image/--gif/--video PATH --alt TEXT`, `media put`
and `media prune`.

The options themselves are declared in `ops.commands` (kept free of heavy imports).

Each file is streamed into the configured media store (its type sniffed from its bytes and
checked against the flag and X's limits); the nth `--alt` describes the nth file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
from redis.exceptions import RedisError

from twitstack.core.config import Settings
from twitstack.core.errors import RedisUnavailableError
from twitstack.core.redis import open_redis
from twitstack.writes.media import MB, Attachment, MediaRefused, kind_of
from twitstack.writes.media_refs import IncompleteScan, referenced_media
from twitstack.writes.media_store import ingest, open_configured_store, prune

_REDIS_WAIT_S = 10.0


async def _read(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(MB):
            yield chunk


async def store_files(
    settings: Settings, files: Sequence[tuple[str, str]], alts: Sequence[str]
) -> list[dict[str, Any]]:
    """Store each file and return the attachment records; ValueError/MediaRefused say why not."""
    if len(alts) > len(files):
        raise ValueError(f"--alt: {len(alts)} given for {len(files)} file(s)")
    attachments: list[dict[str, Any]] = []
    async with open_configured_store(settings) as store:
        for index, (flag, name) in enumerate(files):
            path = Path(name)
            if not await anyio.Path(path).is_file():
                raise ValueError(f"--{flag} {name}: not a readable file")
            info = await ingest(store, _read(path), tmp_dir=settings.state_dir / "media-tmp",
                                min_free_bytes=settings.media.min_free_mb * MB)  # fmt: skip
            if kind_of(info.type) != flag:
                raise ValueError(f"--{flag} {name}: the file is {info.type}, not a {flag}")
            alt = alts[index] if index < len(alts) else None
            attachments.append(Attachment(info.sha256, info.type, info.size, alt).to_dict())
    return attachments


def attachments_for(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    """The attachments of the enqueue command's files (empty without any)."""
    files = list(getattr(args, "media", None) or [])
    alts = list(getattr(args, "alts", None) or [])
    if not files:
        if alts:
            raise ValueError("--alt: no --image, --gif or --video to describe")
        return []

    async def work() -> list[dict[str, Any]]:
        return await store_files(settings, files, alts)

    try:
        return anyio.run(work)
    except MediaRefused as exc:
        raise ValueError(exc.message) from None


def put_command(args: argparse.Namespace, settings: Settings) -> int:
    """`twitstack media put PATH [--alt TEXT]`: the record a producer puts in `attachments`."""
    flag_free = [(None, args.path)]
    try:
        (record,) = anyio.run(store_any, settings, flag_free, args.alt)
    except (ValueError, OSError, MediaRefused) as exc:
        print(f"twitstack: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    print(json.dumps(record))
    return 0


async def store_any(
    settings: Settings, files: Sequence[tuple[str | None, str]], alt: str | None
) -> list[dict[str, Any]]:
    """Store files of any accepted type (no flag to match)."""
    found: list[dict[str, Any]] = []
    async with open_configured_store(settings) as store:
        for _, name in files:
            path = Path(name)
            if not await anyio.Path(path).is_file():
                raise ValueError(f"{name}: not a readable file")
            info = await ingest(store, _read(path), tmp_dir=settings.state_dir / "media-tmp",
                                min_free_bytes=settings.media.min_free_mb * MB)  # fmt: skip
            found.append(Attachment(info.sha256, info.type, info.size, alt).to_dict())
    return found


def prune_command(args: argparse.Namespace, settings: Settings) -> int:
    """`twitstack media prune`: delete files older than the retention (0 days: keep all),
    except those a request not in a final state (or a queued message) names."""
    days = args.older_than_days
    days = settings.media.retention_days if days is None else days
    if days <= 0:
        print("media retention is 0: nothing pruned", file=sys.stderr)
        return 0
    recent_h = settings.media.prune_keep_recent_hours

    async def work() -> tuple[int, int]:
        # Which files are still needed is read from Redis first; without it nothing is
        # deleted, since age alone cannot say a late approval will not need the file.
        async with open_redis(settings.redis_url, startup_timeout_s=_REDIS_WAIT_S) as redis:
            keep = await referenced_media(redis)
        async with open_configured_store(settings) as store:
            deleted = await prune(
                store, older_than_s=days * 86_400, keep=keep, keep_recent_s=recent_h * 3600
            )
        return deleted, len(keep)

    try:
        deleted, kept = anyio.run(work)
    except (RedisError, RedisUnavailableError, OSError, IncompleteScan) as exc:
        print(f"twitstack: media prune: cannot list the files live requests need "
              f"({type(exc).__name__}); nothing pruned", file=sys.stderr)  # fmt: skip
        return 1
    print(f"pruned {deleted} file(s) stored more than {days:g} days ago "
          f"(kept those named by {kept} hash(es) of live requests, and any stored in the "
          f"last {recent_h:g} h)")  # fmt: skip
    return 0
