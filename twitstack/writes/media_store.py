"""The media store: files attached to posts, kept by SHA-256 until the writer uploads them.

Two back ends share one shape: `LocalMediaStore` (files under `<data_dir>/media`) and
`S3MediaStore` (an S3-compatible bucket, MinIO or AWS, in `media_s3`). Keys are only ever the
64 hex digits of a file's hash, checked on every call, so no name a client sends can reach a
path or an object key. Storing is idempotent: the same bytes always land on the same key.
`ingest` streams an upload to a temporary file while hashing it, checks X's limits on the
sniffed type, then stores it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
from pydantic import SecretStr

from twitstack.core.errors import TwitstackError
from twitstack.writes.media import (
    MAX_UPLOAD_BYTES,
    MB,
    SHA256_PATTERN,
    SNIFF_BYTES,
    MediaRefused,
    check_upload,
    sniff,
)

if TYPE_CHECKING:
    from twitstack.core.config import Settings


class MediaMissing(TwitstackError):
    """The store holds no file under this hash (never uploaded, pruned, or lost)."""

    def __init__(self, sha256: str) -> None:
        self.sha256 = sha256
        super().__init__(f"media {sha256} is not in the media store")


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """What the store knows of one file."""

    sha256: str
    type: str
    size: int
    stored_at: float = 0.0  # epoch seconds; 0 when the back end does not say


class MediaStore(Protocol):
    """Content-addressed file storage."""

    name: str

    async def put_file(self, path: Path, info: StoredMedia) -> None:
        """Store the file at `path` (whose hash the caller computed) under `info.sha256`.

        A file already stored keeps its bytes but is stored *now*: retention counts from the
        last upload, so a file attached again is not pruned under its new request.
        """
        ...

    async def head(self, sha256: str) -> StoredMedia | None:
        """The stored file's facts, or None."""
        ...

    async def read(self, sha256: str, offset: int = 0, length: int | None = None) -> bytes:
        """`length` bytes from `offset` (to the end when None); raises MediaMissing."""
        ...

    async def delete(self, sha256: str) -> None:
        """Forget a file (nothing happens when it is absent)."""
        ...

    def list_all(self) -> AsyncIterator[StoredMedia]:
        """Every stored file (for retention)."""
        ...


def is_store_error(exc: BaseException) -> bool:
    """An error of a store's back end (the disk, or botocore, imported only with S3)."""
    return isinstance(exc, OSError) or type(exc).__module__.startswith(("botocore", "aiobotocore"))


def checked_sha(sha256: str) -> str:
    """`sha256` when it is 64 lowercase hex digits; ValueError otherwise."""
    if not isinstance(sha256, str) or SHA256_PATTERN.fullmatch(sha256) is None:
        raise ValueError("expected a sha256 of 64 lowercase hex digits")
    return sha256


class LocalMediaStore:
    """Files under `root/<first two hex digits>/<sha256>`, written atomically."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        sha = checked_sha(sha256)
        return self.root / sha[:2] / sha

    async def put_file(self, path: Path, info: StoredMedia) -> None:
        target = self._path(info.sha256)
        if await anyio.Path(target).exists():
            # Same hash, same bytes; the mtime is the stored time retention reads.
            try:
                await anyio.to_thread.run_sync(os.utime, target)
                return
            except FileNotFoundError:
                pass  # pruned meanwhile: store it again

        def copy() -> None:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Unique per call: two uploads of the same file at once must not share it.
            temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
            with path.open("rb") as source, temporary.open("wb") as sink:
                while chunk := source.read(MB):
                    sink.write(chunk)
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(temporary, target)

        await anyio.to_thread.run_sync(copy)

    async def head(self, sha256: str) -> StoredMedia | None:
        path = self._path(sha256)
        try:
            stat = await anyio.Path(path).stat()
            async with await anyio.open_file(path, "rb") as handle:
                first = await handle.read(SNIFF_BYTES)
        except FileNotFoundError:
            return None
        kind = sniff(first) or "application/octet-stream"
        return StoredMedia(sha256, kind, stat.st_size, stat.st_mtime)

    async def read(self, sha256: str, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(sha256)
        try:
            async with await anyio.open_file(path, "rb") as handle:
                await handle.seek(offset)
                return await handle.read(-1 if length is None else length)
        except FileNotFoundError:
            raise MediaMissing(sha256) from None

    async def delete(self, sha256: str) -> None:
        await anyio.Path(self._path(sha256)).unlink(missing_ok=True)

    async def list_all(self) -> AsyncIterator[StoredMedia]:
        if not await anyio.Path(self.root).is_dir():
            return
        for path in sorted(self.root.glob("??/*")):
            if SHA256_PATTERN.fullmatch(path.name):
                found = await self.head(path.name)
                if found is not None:
                    yield found


@asynccontextmanager
async def local_media_store(root: Path) -> AsyncIterator[MediaStore]:
    """A LocalMediaStore under `root`, as a context manager like the others."""
    yield LocalMediaStore(root)


@asynccontextmanager
async def open_media_store(
    *,
    kind: str,
    data_dir: Path,
    bucket: str,
    prefix: str,
    region: str,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> AsyncIterator[MediaStore]:
    """The configured store: S3 when `kind` is "s3" (or "auto" with an endpoint), else local."""
    if kind == "s3" or (kind == "auto" and endpoint_url):
        from twitstack.writes.media_s3 import open_s3_media_store

        async with open_s3_media_store(
            bucket=bucket, prefix=prefix, region=region, endpoint_url=endpoint_url,
            access_key_id=access_key_id, secret_access_key=secret_access_key,
        ) as store:  # fmt: skip
            yield store
        return
    yield LocalMediaStore(data_dir / "media")


def _check_space(tmp_dir: Path, min_free_bytes: int, needed: int = 0) -> None:
    """MediaRefused("no_space") when `tmp_dir`'s disk would keep less than `min_free_bytes`."""
    if min_free_bytes <= 0:
        return
    if shutil.disk_usage(tmp_dir).free - needed < min_free_bytes:
        raise MediaRefused(
            "no_space",
            f"the server keeps at least {min_free_bytes // MB} MB of disk free and has less; "
            "try again after old media is pruned",
        )


async def ingest(
    store: MediaStore,
    chunks: AsyncIterable[bytes] | Iterable[bytes],
    *,
    tmp_dir: Path,
    max_bytes: int = MAX_UPLOAD_BYTES,
    min_free_bytes: int = 0,
) -> StoredMedia:
    """Hash, check and store an upload; raises MediaRefused (the file is not kept then).

    The body is streamed to a temporary file, never held whole in memory, and reading stops
    as soon as it passes `max_bytes`, or as soon as the disk has less than `min_free_bytes`
    free (a local store needs the file's size once more for its copy).
    """
    await anyio.Path(tmp_dir).mkdir(parents=True, exist_ok=True)
    _check_space(tmp_dir, min_free_bytes)
    digest, size, head = hashlib.sha256(), 0, b""
    temporary = tmp_dir / f"upload-{secrets.token_hex(12)}.part"
    try:
        async with await anyio.open_file(temporary, "wb") as sink:
            async for chunk in _aiter(chunks):
                size += len(chunk)
                if size > max_bytes:
                    raise MediaRefused(
                        "too_large",
                        f"expected at most {max_bytes // MB} MB (X's largest limit), "
                        f"found more than {max_bytes} bytes",
                    )
                _check_space(tmp_dir, min_free_bytes, len(chunk))
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                digest.update(chunk)
                await sink.write(chunk)
        content_type = check_upload(head, size)
        info = StoredMedia(digest.hexdigest(), content_type, size, time.time())
        if store.name == "local":
            _check_space(tmp_dir, min_free_bytes, size)
        await store.put_file(temporary, info)
        return info
    finally:
        await anyio.Path(temporary).unlink(missing_ok=True)


async def _aiter(chunks: AsyncIterable[bytes] | Iterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk


async def prune(
    store: MediaStore,
    *,
    older_than_s: float,
    now: float | None = None,
    keep: Collection[str] = frozenset(),
    keep_recent_s: float = 0.0,
) -> int:
    """Delete files stored more than `older_than_s` ago, except those in `keep` (hashes a live
    request names) and those stored in the last `keep_recent_s` (an upload whose request is
    being created right now is named nowhere yet); returns how many went."""
    cutoff = (now if now is not None else time.time()) - max(older_than_s, keep_recent_s)
    doomed = [
        m.sha256
        async for m in store.list_all()
        if 0 < m.stored_at < cutoff and m.sha256 not in keep
    ]
    for sha in doomed:
        await store.delete(sha)
    return len(doomed)


def open_configured_store(settings: Settings) -> AbstractAsyncContextManager[MediaStore]:
    """`open_media_store` with the `[media]` section and the top-level minio_* settings."""
    media = settings.media

    def secret(value: SecretStr | None) -> str | None:
        return None if value is None else value.get_secret_value()

    return open_media_store(
        kind=media.store,
        data_dir=settings.state_dir,
        bucket=media.bucket or settings.minio_bucket,
        prefix=media.s3_prefix,
        region=settings.minio_region,
        endpoint_url=settings.minio_endpoint,
        access_key_id=secret(settings.minio_access_key),
        secret_access_key=secret(settings.minio_secret_key),
    )
