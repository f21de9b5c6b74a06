"""`twitstack enqueue tweet --image/--gif/--video PATH --alt TEXT`: files into the store."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
import redis

from tests.ops.conftest import invoke
from tests.support.media_files import gif, mp4, png
from twitstack.core.config import Settings
from twitstack.writes import keys
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
