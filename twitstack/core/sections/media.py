"""Settings of the media store: where uploaded images and videos wait until they are posted."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class MediaSettings(BaseModel):
    """Where files attached to posts are kept, by content hash, until the writer uploads them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # "auto": the S3-compatible store of the top-level minio_* settings when minio_endpoint is
    # set, else `<data_dir>/media`; "s3" or "local" force one.
    store: Literal["auto", "s3", "local"] = "auto"
    # Objects live under this prefix in `bucket`, or minio_bucket when unset.
    s3_prefix: str = Field(default="media", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    bucket: str | None = None
    # Files older than this are deleted by `twitstack media prune`; 0 keeps them forever.
    retention_days: int = Field(default=30, ge=0)
    # Prune never deletes a file a request not yet in a final state names, nor one stored in
    # the last this many hours (its request may be being created as prune runs).
    prune_keep_recent_hours: float = Field(default=24.0, ge=0, le=24 * 365)
    # Uploads are refused (507) while the disk holding the upload spool (and a local store)
    # has less than this many MB free: anyone allowed to upload could otherwise fill the disk
    # the ledger database and logs live on. 0 turns the check off.
    min_free_mb: int = Field(default=1024, ge=0)
    # What one moderation user (UI or API token) may upload per UTC day; past it their
    # uploads are 429 until the next day. 0 turns the budget off.
    max_upload_mb_per_user_day: int = Field(default=2048, ge=0)
    # X media ids expire about 24 h after upload; a cached id within this margin of its
    # expiry is uploaded again rather than risk expiring between upload and post.
    expiry_margin_s: float = Field(default=3600.0, ge=0, le=43_200)
    # How long the writer waits for X to process a video or GIF before giving up this try.
    processing_timeout_s: float = Field(default=600.0, gt=0, le=7200)
    # Chunk size of X's chunked upload (X accepts at most 5 MB per APPEND).
    chunk_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024, le=5 * 1024 * 1024)
