"""The media store on an S3-compatible bucket (MinIO or AWS S3), through `core.aws`.

Objects are `<prefix>/<sha256>` with the sniffed Content-Type; reads use byte ranges so the
writer's chunked upload of a 512 MB video never holds the whole file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from twitstack.writes.media import SHA256_PATTERN
from twitstack.writes.media_store import MediaMissing, StoredMedia, checked_sha

_MISSING = {"404", "NoSuchKey", "NotFound"}


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    return str(error.get("Code", ""))


class S3MediaStore:
    """Content-addressed objects in one bucket; the client is opened by `open_s3_media_store`."""

    name = "s3"

    def __init__(self, client: Any, *, bucket: str, prefix: str) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, sha256: str) -> str:
        return f"{self.prefix}/{checked_sha(sha256)}"

    async def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            try:
                await self._client.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    async def put_file(self, path: Path, info: StoredMedia) -> None:
        key = self._key(info.sha256)
        if await self.head(info.sha256) is not None:
            # Same hash, same bytes: a copy onto itself (no bytes move) renews LastModified,
            # the stored time retention reads.
            await self._client.copy_object(
                Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE", ContentType=info.type,
            )  # fmt: skip
            return
        await self._client.upload_file(
            str(path), self.bucket, key,
            ExtraArgs={"ContentType": info.type},
        )  # fmt: skip

    async def head(self, sha256: str) -> StoredMedia | None:
        from botocore.exceptions import ClientError

        try:
            found = await self._client.head_object(Bucket=self.bucket, Key=self._key(sha256))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        modified = found.get("LastModified")
        return StoredMedia(
            sha256,
            str(found.get("ContentType", "application/octet-stream")),
            int(found.get("ContentLength", 0)),
            modified.timestamp() if modified is not None else 0.0,
        )

    async def read(self, sha256: str, offset: int = 0, length: int | None = None) -> bytes:
        from botocore.exceptions import ClientError

        extra: dict[str, str] = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            extra["Range"] = f"bytes={offset}-{end}"
        try:
            answer = await self._client.get_object(
                Bucket=self.bucket, Key=self._key(sha256), **extra
            )
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise MediaMissing(sha256) from None
            raise
        async with answer["Body"] as stream:
            data: bytes = await stream.read()
        return data

    async def delete(self, sha256: str) -> None:
        await self._client.delete_object(Bucket=self.bucket, Key=self._key(sha256))

    async def list_all(self) -> AsyncIterator[StoredMedia]:
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/"):
            for item in page.get("Contents", []):
                sha = str(item["Key"]).rsplit("/", 1)[-1]
                if SHA256_PATTERN.fullmatch(sha):
                    modified = item.get("LastModified")
                    yield StoredMedia(
                        sha,
                        "",
                        int(item.get("Size", 0)),
                        modified.timestamp() if modified is not None else 0.0,
                    )


@asynccontextmanager
async def open_s3_media_store(
    *,
    bucket: str,
    prefix: str,
    region: str,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> AsyncIterator[S3MediaStore]:
    """A store on the bucket (created if missing), its client closed on exit."""
    from twitstack.core.aws import open_aws_client

    async with open_aws_client(
        "s3", region=region, endpoint_url=endpoint_url, access_key_id=access_key_id,
        secret_access_key=secret_access_key, timeout_s=60.0,
    ) as client:  # fmt: skip
        store = S3MediaStore(client, bucket=bucket, prefix=prefix)
        await store.ensure_bucket()
        yield store
