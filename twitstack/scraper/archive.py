"""The S3/MinIO archive: each run's new tweets as one gzip JSONL object under a fixed key."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import stamina

# botocore and aioboto3 (~200 modules) are imported where an archive is in use, not here: the
# scraper service imports this module whether or not an archive is configured.


def archive_key(prefix: str, job: str, started_at: float, run_id: int) -> str:
    """job/date/run: the same run always maps to the same key, so a retry overwrites itself."""
    day = datetime.fromtimestamp(started_at, tz=UTC).strftime("%Y/%m/%d")
    return f"{prefix.strip('/')}/{job}/{day}/run-{run_id:08d}.jsonl.gz"


def encode_jsonl_gz(rows: Sequence[dict[str, Any]]) -> bytes:
    """Byte-identical output for identical rows (gzip mtime pinned to 0)."""
    text = "".join(
        json.dumps(row, separators=(",", ":"), ensure_ascii=False, sort_keys=True) + "\n"
        for row in rows
    )
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


def _retryable(exc: Exception) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return status >= 500 or status in (408, 429)
    return isinstance(exc, BotoCoreError)  # connection refused, timeouts, ...


class TweetArchive:
    """Writes run objects to one bucket; the client is opened by `open_archive`."""

    def __init__(self, client: Any, *, bucket: str, prefix: str, attempts: int) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self._attempts = attempts

    async def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            try:
                await self._client.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    async def put_run(
        self, job: str, run_id: int, started_at: float, rows: Sequence[dict[str, Any]]
    ) -> str:
        """Store one run's rows; retried on transient errors; returns the key."""
        key = archive_key(self.prefix, job, started_at, run_id)
        body = encode_jsonl_gz(rows)
        async for attempt in stamina.retry_context(
            on=_retryable, attempts=self._attempts, wait_initial=0.2, wait_max=5.0
        ):
            with attempt:
                await self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentType="application/x-ndjson",
                    ContentEncoding="gzip",
                )
        return key

    async def keys(self, job: str | None = None) -> list[str]:
        prefix = f"{self.prefix.strip('/')}/" + (f"{job}/" if job else "")
        found: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(obj["Key"] for obj in page.get("Contents", []))
        return found

    async def read(self, key: str) -> list[dict[str, Any]]:
        rep = await self._client.get_object(Bucket=self.bucket, Key=key)
        async with rep["Body"] as stream:
            data = await stream.read()
        return [json.loads(line) for line in gzip.decompress(data).decode().splitlines() if line]


@asynccontextmanager
async def open_archive(
    *,
    bucket: str,
    prefix: str,
    region: str,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    attempts: int = 5,
) -> AsyncIterator[TweetArchive]:
    """An archive on an S3-compatible endpoint (MinIO or AWS), bucket created if missing."""
    from twitstack.core.aws import open_aws_client

    async with open_aws_client(
        "s3",
        region=region,
        endpoint_url=endpoint_url,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
    ) as client:
        archive = TweetArchive(client, bucket=bucket, prefix=prefix, attempts=attempts)
        await archive.ensure_bucket()
        yield archive
