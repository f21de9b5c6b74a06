"""Files named on `twitstack enqueue tweet --image/--gif/--video PATH --alt TEXT`.

The options themselves are declared in `ops.commands` (kept free of heavy imports).

Each file is streamed into the configured media store (its type sniffed from its bytes and
checked against the flag and X's limits); the nth `--alt` describes the nth file.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio

from twitstack.core.config import Settings
from twitstack.writes.media import MB, Attachment, MediaRefused, kind_of
from twitstack.writes.media_store import ingest, open_configured_store


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
            info = await ingest(store, _read(path), tmp_dir=settings.state_dir / "media-tmp")
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
