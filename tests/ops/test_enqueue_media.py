"""`twitstack enqueue tweet --image/--gif/--video PATH --alt TEXT`: files into the store."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from tests.ops.conftest import invoke, run_async
from tests.support.media_files import gif, mp4, png
from twitstack.core.config import Settings
from twitstack.ops import media_files
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest, utcnow
from twitstack.writes.wire import decode_write_request


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_images_with_alt_text_are_stored_and_referenced(
    settings: Settings, sync_redis: redis.Redis, tmp_path: Path
) -> None:
    """Two images, the first described: both stored by hash, the message names them."""
    first, second = png(seed=1), png(seed=2)
    code = invoke(
        settings, "enqueue", "tweet", "two images",
        "--image", _write(tmp_path, "a.png", first), "--alt", "a red square",
        "--image", _write(tmp_path, "b.png", second),
    )  # fmt: skip
    assert code == 0
    [raw] = sync_redis.lrange(keys.WRITE_QUEUE, 0, -1)
    request = decode_write_request(raw)
    attachments = request.payload["media"]["attachments"]
    assert attachments == [
        {"sha256": hashlib.sha256(first).hexdigest(), "type": "image/png",
         "size": len(first), "alt_text": "a red square"},
        {"sha256": hashlib.sha256(second).hexdigest(), "type": "image/png", "size": len(second)},
    ]  # fmt: skip
    stored = settings.state_dir / "media" / attachments[0]["sha256"][:2] / attachments[0]["sha256"]
    assert stored.read_bytes() == first


def test_video_and_gif_flags(settings: Settings, sync_redis: redis.Redis, tmp_path: Path) -> None:
    """--video takes an MP4 (media alone is a post), --gif a GIF."""
    assert (
        invoke(settings, "enqueue", "tweet", "", "--video", _write(tmp_path, "v.mp4", mp4(9000)))
        == 0
    )
    assert invoke(settings, "enqueue", "tweet", "g", "--gif", _write(tmp_path, "g.gif", gif())) == 0
    types = [
        decode_write_request(raw).payload["media"]["attachments"][0]["type"]
        for raw in sync_redis.lrange(keys.WRITE_QUEUE, 0, -1)
    ]
    assert types == ["video/mp4", "image/gif"]


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ([("--image", "v.mp4", mp4(100))], "not a image"),
        ([("--image", "x.png", b"#!/bin/sh\nrm -rf /")], "JPEG, PNG"),
        ([("--image", f"{i}.png", png(seed=i)) for i in range(5)], "1-4"),
        ([("--image", "a.png", png()), ("--video", "v.mp4", mp4(100))], "alone"),
        ([("--image", "big.png", png() + b"\0" * (5 * 1024 * 1024))], "5 MB"),
    ],
)
def test_refusals_exit_2_and_push_nothing(
    settings: Settings, sync_redis: redis.Redis, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], files: list[tuple[str, str, bytes]], says: str,
) -> None:  # fmt: skip
    """Wrong type for the flag, not media, five images, mixed kinds, oversize: exit 2."""
    argv = [arg for flag, name, data in files for arg in (flag, _write(tmp_path, name, data))]
    code = invoke(settings, "enqueue", "tweet", "x", *argv)
    assert code == 2
    assert says in capsys.readouterr().err
    assert sync_redis.llen(keys.WRITE_QUEUE) == 0


def test_missing_file_and_extra_alt(
    settings: Settings, sync_redis: redis.Redis, tmp_path: Path
) -> None:
    """A path that is not a file, or more --alt than files, is a usage error."""
    assert invoke(settings, "enqueue", "tweet", "x", "--image", str(tmp_path / "nope.png")) == 2
    assert invoke(settings, "enqueue", "tweet", "x", "--alt", "orphan") == 2
    assert sync_redis.llen(keys.WRITE_QUEUE) == 0


def test_media_put_prints_the_record_and_prune_keeps_fresh_files(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`media put` stores and prints the attachment record; `media prune` leaves files newer
    than the retention and deletes older ones."""
    data = png(seed=21)
    assert invoke(settings, "media", "put", _write(tmp_path, "p.png", data), "--alt", "x") == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {"sha256": hashlib.sha256(data).hexdigest(), "type": "image/png",
                      "size": len(data), "alt_text": "x"}  # fmt: skip
    assert invoke(settings, "media", "prune") == 0
    assert "pruned 0" in capsys.readouterr().out
    stored = settings.state_dir / "media" / record["sha256"][:2] / record["sha256"]
    old = time.time() - 40 * 86_400
    os.utime(stored, (old, old))
    assert invoke(settings, "media", "prune") == 0
    assert "pruned 1" in capsys.readouterr().out
    assert not stored.exists()
    assert invoke(settings, "media", "put", _write(tmp_path, "t.txt", b"plain text")) == 2


def _age(settings: Settings, sha: str, days: float) -> Path:
    stored = settings.state_dir / "media" / sha[:2] / sha
    old = time.time() - days * 86_400
    os.utime(stored, (old, old))
    return stored


def test_prune_keeps_files_that_requests_not_yet_final_still_need(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    """A file older than the retention stays while a pending or long-scheduled request names
    it, and goes once that request is final (rejected)."""
    shas = []
    for seed in (31, 32):
        data = png(seed=seed)
        assert invoke(settings, "media", "put", _write(tmp_path, f"{seed}.png", data)) == 0
        shas.append(json.loads(capsys.readouterr().out)["sha256"])

    def tweet(sha: str, **extra: object) -> WriteRequest:
        media = {"attachments": [{"sha256": sha, "type": "image/png", "size": 1}]}
        return WriteRequest(action=WriteAction.TWEET, payload={"text": "x", "media": media},
                            author="test", **extra)  # type: ignore[arg-type]  # fmt: skip

    pending = tweet(shas[0])
    scheduled = tweet(shas[1], moderation=ModerationStatus.APPROVED,
                      not_before=utcnow() + timedelta(days=45))  # fmt: skip

    async def record() -> None:
        client = AsyncRedis.from_url(redis_url)
        try:
            ledger = RequestLedger(client)
            await ledger.record(pending, actor="test")
            await ledger.record(scheduled, actor="test")
        finally:
            await client.aclose()

    run_async(record)
    files = [_age(settings, sha, 40) for sha in shas]
    assert invoke(settings, "media", "prune") == 0
    assert "pruned 0" in capsys.readouterr().out
    assert all(path.exists() for path in files)

    async def reject() -> None:
        client = AsyncRedis.from_url(redis_url)
        try:
            await RequestLedger(client).transition(
                pending.id, ModerationStatus.REJECTED, from_states=[ModerationStatus.PENDING],
                actor="test", reason="no",
            )  # fmt: skip
        finally:
            await client.aclose()

    run_async(reject)
    assert invoke(settings, "media", "prune") == 0
    assert "pruned 1" in capsys.readouterr().out
    assert not files[0].exists()
    assert files[1].exists()


def test_prune_deletes_nothing_when_redis_cannot_say_what_is_needed(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the ledger, age alone would decide: prune refuses and says why."""
    monkeypatch.setattr(media_files, "_REDIS_WAIT_S", 0.5)
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings = make_settings(redis_url=f"redis://127.0.0.1:{port}/0")
    assert invoke(settings, "media", "put", _write(tmp_path, "p.png", png(seed=33))) == 0
    stored = _age(settings, json.loads(capsys.readouterr().out)["sha256"], 40)
    assert invoke(settings, "media", "prune") == 1
    assert "nothing pruned" in capsys.readouterr().err
    assert stored.exists()
