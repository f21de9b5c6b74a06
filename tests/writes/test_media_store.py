"""The media store, local and on S3 (moto server mode on loopback): ingest, read, limits."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from tests.support.media_files import mp4, png
from tests.support.moto import TEST_CREDENTIALS, moto_server
from twitstack.writes.media import MB, MediaRefused
from twitstack.writes.media_store import (
    MediaMissing,
    MediaStore,
    ingest,
    open_media_store,
    prune,
)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, moto_endpoint: str
) -> AsyncIterator[MediaStore]:
    """The same tests against both back ends."""
    async with open_media_store(
        kind=request.param,
        data_dir=tmp_path,
        bucket=f"media-{uuid.uuid4().hex[:12]}",  # one per test: moto is shared
        prefix="media",
        region="us-east-1",
        endpoint_url=moto_endpoint,
        access_key_id=TEST_CREDENTIALS["aws_access_key_id"],
        secret_access_key=TEST_CREDENTIALS["aws_secret_access_key"],
    ) as opened:
        assert opened.name == request.param
        yield opened


def pieces(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.anyio
async def test_ingest_stores_by_hash_and_reads_ranges(store: MediaStore, tmp_path: Path) -> None:
    """The key is the SHA-256 of the bytes; ranges read back exactly; storing twice is one."""
    data = mp4(300_000)
    info = await ingest(store, pieces(data, 7000), tmp_dir=tmp_path / "tmp")
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert (info.type, info.size) == ("video/mp4", len(data))
    again = await ingest(store, [data], tmp_dir=tmp_path / "tmp")
    assert again.sha256 == info.sha256
    head = await store.head(info.sha256)
    assert head is not None
    assert (head.type, head.size) == ("video/mp4", len(data))
    assert await store.read(info.sha256, 1000, 5000) == data[1000:6000]
    assert await store.read(info.sha256) == data
    assert list((tmp_path / "tmp").iterdir()) == []  # no temporary file left


@pytest.mark.anyio
async def test_ingest_refuses_and_keeps_nothing(store: MediaStore, tmp_path: Path) -> None:
    """Wrong magic bytes and oversized files are refused with a reason; nothing is stored."""
    with pytest.raises(MediaRefused) as wrong:
        await ingest(store, [b"<html><script>alert(1)</script>"], tmp_dir=tmp_path)
    assert wrong.value.reason == "unsupported_type"
    big_png = png() + b"\x00" * (5 * MB)
    with pytest.raises(MediaRefused) as big:
        await ingest(store, pieces(big_png, MB), tmp_dir=tmp_path)
    assert big.value.reason == "too_large"
    with pytest.raises(MediaRefused) as capped:
        await ingest(store, pieces(png() * 100, 100), tmp_dir=tmp_path, max_bytes=1000)
    assert capped.value.reason == "too_large"
    assert [m async for m in store.list_all()] == []
    assert await store.head(hashlib.sha256(big_png).hexdigest()) is None


@pytest.mark.anyio
async def test_unknown_and_hostile_keys(store: MediaStore) -> None:
    """An unknown hash is MediaMissing; anything but 64 hex digits never reaches a path or key."""
    with pytest.raises(MediaMissing):
        await store.read("0" * 64)
    for hostile in ("../" * 20 + "etc/passwd", "A" * 64, "a" * 63 + "/", ""):
        with pytest.raises(ValueError, match="sha256"):
            await store.read(hostile)


@pytest.mark.anyio
async def test_prune_deletes_old_files(store: MediaStore, tmp_path: Path) -> None:
    """Retention deletes what was stored before the cutoff and keeps the rest."""
    info = await ingest(store, [png(seed=3)], tmp_dir=tmp_path)
    assert await prune(store, older_than_s=3600) == 0
    assert await prune(store, older_than_s=3600, now=info.stored_at + 7200) == 1
    assert await store.head(info.sha256) is None


@pytest.mark.anyio
async def test_prune_keeps_files_live_requests_name_and_recent_uploads(
    store: MediaStore, tmp_path: Path
) -> None:
    """Age alone is not enough: a hash in `keep` stays however old, and nothing stored within
    `keep_recent_s` goes even when the caller asks for a shorter retention."""
    needed = await ingest(store, [png(seed=4)], tmp_dir=tmp_path)
    unneeded = await ingest(store, [png(seed=5)], tmp_dir=tmp_path)
    later = max(needed.stored_at, unneeded.stored_at) + 7200
    assert await prune(store, older_than_s=60, now=later, keep_recent_s=3 * 3600) == 0
    assert await prune(store, older_than_s=60, now=later, keep={needed.sha256}) == 1
    assert await store.head(needed.sha256) is not None
    assert await store.head(unneeded.sha256) is None


@pytest.mark.anyio
async def test_the_same_file_stored_concurrently_stays_whole(
    store: MediaStore, tmp_path: Path
) -> None:
    """Eight simultaneous uploads of one 2 MB file: one object, byte-identical."""
    if store.name == "s3":
        pytest.skip("moto's server answers 500 to concurrent PUTs of one key; S3 does not")
    data = mp4(2 * 1024 * 1024, seed=3)

    async def one() -> None:
        await ingest(store, pieces(data, 64 * 1024), tmp_dir=tmp_path / "tmp")

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(one)
    sha = hashlib.sha256(data).hexdigest()
    assert await store.read(sha) == data
    assert [m.sha256 async for m in store.list_all()] == [sha]


@pytest.mark.anyio
async def test_uploading_a_stored_file_again_renews_its_retention(
    store: MediaStore, tmp_path: Path
) -> None:
    """A file attached again (same bytes, same hash) counts as stored now: prune must not
    delete it under the new request because the first upload was long ago."""
    data = png(seed=21)
    first = await ingest(store, [data], tmp_dir=tmp_path)
    if store.name == "local":
        old = first.stored_at - 40 * 86_400
        path = tmp_path / "media" / first.sha256[:2] / first.sha256
        os.utime(path, (old, old))
    else:
        # S3 keeps LastModified to the second and it cannot be set: let one second pass.
        for _ in range(30):
            await anyio.sleep(0.1)
            if int(time.time()) > int(first.stored_at) + 1:
                break
    before = await store.head(first.sha256)
    assert before is not None
    await ingest(store, [data], tmp_dir=tmp_path)
    after = await store.head(first.sha256)
    assert after is not None
    assert after.stored_at > before.stored_at
    assert await prune(store, older_than_s=30 * 86_400, now=after.stored_at + 1) == 0
    assert await store.read(first.sha256) == data
