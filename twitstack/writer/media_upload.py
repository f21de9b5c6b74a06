"""Uploading a request's attachments to X at send time, before `sending` is committed.

X's media ids expire (about 24 h after upload), so files are uploaded when the post is due,
not when it is approved. Uploading is safe to repeat: a crash, a timeout or a 5xx mid-upload
leaves at worst an orphaned upload at X that expires on its own, and the request is still
`approved`, so the next attempt uploads again. The post itself is untouched: `sending` is
committed after the uploads and before POST /2/tweets, exactly as for a text-only post.

Media ids are cached in Redis per (account, file hash, alt text) with their expiry, so a
retry, a re-send after reconciliation or another request with the same file reuses them; an
id within `expiry_margin_s` of expiring is uploaded again. Each entry carries an HMAC under a
key only writers hold (a file in the state directory): anyone else who can write `writes:*`
could otherwise map an approved file to another file's media id and change what is posted.

Images use the simple upload; GIFs and videos the chunked one (initialize, append per chunk,
finalize) and then STATUS polls until X has processed them. Alt text goes through the
metadata endpoint. All need the `media.write` scope.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import math
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from redis.asyncio import Redis

from twitstack.core.logging import get_logger
from twitstack.core.sections.media import MediaSettings
from twitstack.writer.crashpoints import crash_point
from twitstack.writer.outcome import Outcome, OutcomeKind
from twitstack.writer.tokens import AccountAuth
from twitstack.writer.xapi_client import XApiClient
from twitstack.writes.media import Attachment, attachments_in, media_category
from twitstack.writes.media_store import MediaMissing, MediaStore, is_store_error
from twitstack.writes.models import WriteRequest

_log = get_logger("twitstack.writer.media_upload")
CACHE_PREFIX = "writes:media:x:"
MEDIA_CACHE_KEY_FILE = "writer-media-cache.key"  # under the state directory
_MAX_STATUS_POLLS = 600  # a bound on top of processing_timeout_s


class UploadFailure(enum.StrEnum):
    """Why attachments could not be uploaded now (the executor decides what follows)."""

    MISSING = "media_missing"  # the store has no such file: a human must act
    REFUSED = "media_refused"  # X refused the file or its alt text for good
    PROCESSING_FAILED = "media_processing_failed"  # X could not process the video or GIF
    REAUTH = "media_unauthorized"  # a 401: refresh the token and try once more
    WAIT = "media_rate_limited"  # a 429: try after `retry_at`
    TRANSIENT = "media_transient"  # network, 5xx, processing too slow: try again later


class MediaUploadError(Exception):
    """Attachments are not (all) on X; `failure` says why, `detail` is safe to record."""

    def __init__(
        self, failure: UploadFailure, detail: str, *, retry_at: float | None = None
    ) -> None:
        self.failure = failure
        self.detail = detail
        self.retry_at = retry_at
        super().__init__(f"{failure}: {detail}")

    @property
    def for_human(self) -> bool:
        """True when retrying cannot help."""
        return self.failure in (
            UploadFailure.MISSING,
            UploadFailure.REFUSED,
            UploadFailure.PROCESSING_FAILED,
        )


@dataclass(frozen=True, slots=True)
class CachedUpload:
    """A media id X gave for one file (and alt text) of one account."""

    media_id: str
    expires_at: float


def cache_key(account: str, attachment: Attachment) -> str:
    """Where the media id of `attachment` uploaded for `account` is remembered."""
    alt = hashlib.sha256((attachment.alt_text or "").encode("utf-8")).hexdigest()[:16]
    return f"{CACHE_PREFIX}{account}:{attachment.sha256}:{alt}"


def load_or_create_cache_key(path: Path) -> bytes:
    """The writers' key for cache entries, created (mode 0600, never replaced) if missing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < 32:
        raise ValueError(f"{path}: expected 64 hex digits")
    return key


def _entry_mac(key: bytes, name: str, media_id: str, expires_at: float) -> str:
    signed = json.dumps([name, media_id, expires_at]).encode("utf-8")
    return hmac.new(key, signed, hashlib.sha256).hexdigest()


def with_media_ids(payload: Mapping[str, Any], media_ids: list[str]) -> dict[str, Any]:
    """The payload X gets: attachments replaced by the ids they were uploaded as."""
    return {**payload, "media": {"media_ids": media_ids}}


class MediaUploader:
    """Uploads attachments for one account's request, reusing ids that are still fresh."""

    def __init__(
        self,
        redis: Redis,
        settings: MediaSettings,
        open_store: Callable[[], AbstractAsyncContextManager[MediaStore]],
        *,
        clock: Callable[[], float],
        cache_key_bytes: bytes | None = None,
        sleep: Callable[[float], Any] = anyio.sleep,
    ) -> None:
        # Without a key file (a writer with no state directory), entries outlive no restart.
        self._entry_key = cache_key_bytes or secrets.token_bytes(32)
        self._redis = redis
        self._settings = settings
        self._open_store = open_store
        self._clock = clock
        self._sleep = sleep

    async def cached(self, account: str, attachment: Attachment) -> CachedUpload | None:
        """A cached id that will outlive the margin, or None."""
        name = cache_key(account, attachment)
        raw = await self._redis.get(name)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            found = CachedUpload(str(data["media_id"]), float(data["expires_at"]))
            mac = str(data["mac"])
        except (ValueError, KeyError, TypeError, ArithmeticError, RecursionError):
            return None  # an unreadable entry is only a cache miss
        expected = _entry_mac(self._entry_key, name, found.media_id, found.expires_at)
        if not hmac.compare_digest(expected, mac):
            # Not written by a writer holding the key: never post an id nobody uploaded here.
            _log.warning("writer.media_cache_entry_refused", account=account,
                         sha256=attachment.sha256)  # fmt: skip
            return None
        if found.expires_at - self._settings.expiry_margin_s <= self._clock():
            return None
        return found

    async def missing(self, request: WriteRequest) -> str | None:
        """Why a new request's attachments cannot be posted (a file absent or different from
        its record), or None. A store that cannot be reached says nothing: the send-time
        check will."""
        attachments = attachments_in(request.payload)
        if not attachments:
            return None
        try:
            async with self._open_store() as store:
                for attachment in attachments:
                    found = await store.head(attachment.sha256)
                    if found is None:
                        return f"{attachment.sha256}: not in the media store"
                    if found.size != attachment.size:
                        return f"{attachment.sha256}: stored with {found.size} bytes"
        except Exception as exc:
            if not is_store_error(exc):
                raise
        return None

    async def forget(self, account: str, attachments: list[Attachment]) -> None:
        """Drop cached ids (X called them invalid): the next attempt uploads again."""
        if attachments:
            await self._redis.delete(*(cache_key(account, a) for a in attachments))

    async def media_ids(
        self, client: XApiClient, auth: AccountAuth, attachments: list[Attachment]
    ) -> tuple[list[str], int]:
        """X media ids for `attachments`, in order, and how many were uploaded now (the rest
        came from the cache); raises MediaUploadError."""
        ids: list[str] = []
        pending: list[tuple[int, Attachment]] = []
        for index, attachment in enumerate(attachments):
            hit = await self.cached(auth.account, attachment)
            ids.append(hit.media_id if hit is not None else "")
            if hit is None:
                pending.append((index, attachment))
        if not pending:
            return ids, 0
        try:
            async with self._open_store() as store:
                for index, attachment in pending:
                    ids[index] = await self._upload(client, auth, store, attachment)
        except MediaMissing as exc:
            detail = f"file {exc.sha256} is not in the media store"
            raise MediaUploadError(UploadFailure.MISSING, detail) from None
        except MediaUploadError:
            raise
        except Exception as exc:
            if not is_store_error(exc):
                raise
            # The store itself is unreachable (S3 down, disk error): not the file's fault.
            detail = f"media store unavailable: {type(exc).__name__}"
            raise MediaUploadError(UploadFailure.TRANSIENT, detail) from None
        return ids, len(pending)

    async def _upload(
        self, client: XApiClient, auth: AccountAuth, store: MediaStore, attachment: Attachment
    ) -> str:
        started = self._clock()
        stored = await store.head(attachment.sha256)
        if stored is None:
            raise MediaMissing(attachment.sha256)
        if (stored.size, stored.type) != (attachment.size, attachment.type):
            raise MediaUploadError(
                UploadFailure.REFUSED,
                f"stored file {attachment.sha256} is {stored.type} of {stored.size} bytes, "
                f"the approved request says {attachment.type} of {attachment.size}",
            )
        if attachment.kind == "image":
            data = await store.read(attachment.sha256)
            if hashlib.sha256(data).hexdigest() != attachment.sha256:
                # The store's copy changed under its name: never post what was not approved.
                raise MediaUploadError(
                    UploadFailure.REFUSED, f"stored file {attachment.sha256} fails its hash"
                )
            answer = await self._call(
                client, auth, "POST", "/2/media/upload",
                files={"media": data},
                data={"media_category": media_category(attachment.type),
                      "media_type": attachment.type},
            )  # fmt: skip
        else:
            answer = await self._chunked(client, auth, store, attachment)
        media_id, expires_after = _id_and_expiry(answer)
        if attachment.alt_text:
            await self._call(
                client, auth, "POST", "/2/media/metadata",
                json={"id": media_id, "metadata": {"alt_text": {"text": attachment.alt_text}}},
            )  # fmt: skip
        expires_at = started + expires_after
        name = cache_key(auth.account, attachment)
        mac = _entry_mac(self._entry_key, name, media_id, expires_at)
        entry = json.dumps({"media_id": media_id, "expires_at": expires_at, "mac": mac})
        await self._redis.set(name, entry, ex=max(int(expires_after), 1))
        crash_point("after_media_uploaded")
        _log.info(
            "writer.media_uploaded", account=auth.account, sha256=attachment.sha256,
            type=attachment.type, size=attachment.size, seconds=round(self._clock() - started, 3),
        )  # fmt: skip
        return media_id

    async def _chunked(
        self, client: XApiClient, auth: AccountAuth, store: MediaStore, attachment: Attachment
    ) -> dict[str, Any]:
        init = await self._call(
            client, auth, "POST", "/2/media/upload/initialize",
            json={"media_type": attachment.type, "total_bytes": attachment.size,
                  "media_category": media_category(attachment.type)},
        )  # fmt: skip
        media_id, _ = _id_and_expiry(init)
        digest = hashlib.sha256()
        async for index, chunk in _chunks(store, attachment, self._settings.chunk_bytes):
            digest.update(chunk)
            await self._call(
                client, auth, "POST", f"/2/media/upload/{media_id}/append",
                files={"media": chunk}, data={"segment_index": str(index)},
            )  # fmt: skip
        if digest.hexdigest() != attachment.sha256:
            # Not finalized: X drops the unfinished upload; never post what was not approved.
            raise MediaUploadError(
                UploadFailure.REFUSED, f"stored file {attachment.sha256} fails its hash"
            )
        answer = await self._call(client, auth, "POST", f"/2/media/upload/{media_id}/finalize")
        deadline = self._clock() + self._settings.processing_timeout_s
        for _ in range(_MAX_STATUS_POLLS):
            info = _processing(answer)
            state = str(info.get("state", "succeeded"))
            if state == "succeeded":
                return answer
            if state == "failed":
                error = info.get("error")
                detail = error.get("message") if isinstance(error, dict) else None
                raise MediaUploadError(
                    UploadFailure.PROCESSING_FAILED,
                    f"X could not process {attachment.sha256}: {detail or 'failed'}",
                )
            wait = seconds_from_x(info.get("check_after_secs"), default=1.0, most=60.0)
            if self._clock() + wait > deadline:
                break
            await self._sleep(wait)
            answer = await self._call(
                client, auth, "GET", "/2/media/upload",
                params={"command": "STATUS", "media_id": media_id},
            )  # fmt: skip
        raise MediaUploadError(
            UploadFailure.TRANSIENT, f"X still processing {attachment.sha256} after the timeout"
        )

    async def _call(
        self, client: XApiClient, auth: AccountAuth, method: str, path: str, **kwargs: Any
    ) -> dict[str, Any]:
        outcome, body = await client.media(
            "GET" if method == "GET" else "POST", path, auth=auth.auth, auth_kind=auth.kind,
            **kwargs,
        )  # fmt: skip
        if outcome.kind is OutcomeKind.SUCCESS or (
            # A 2xx without an id (append, STATUS) is fine here: nothing is posted by it.
            outcome.kind is OutcomeKind.AMBIGUOUS and outcome.reason == "success_without_id"
        ):
            return body
        raise _failure(outcome, path)


def _failure(outcome: Outcome, path: str) -> MediaUploadError:
    where = path.split("?")[0]
    detail = f"{where}: {outcome.reason} ({outcome.status}) {outcome.detail or ''}".strip()
    kind = outcome.kind
    if kind is OutcomeKind.AUTH_REFRESH:
        return MediaUploadError(UploadFailure.REAUTH, detail)
    if kind is OutcomeKind.WAIT_UNTIL:
        return MediaUploadError(UploadFailure.WAIT, detail, retry_at=outcome.retry_at)
    if kind in (OutcomeKind.TRANSIENT_RETRY, OutcomeKind.AMBIGUOUS):
        return MediaUploadError(UploadFailure.TRANSIENT, detail)  # uploading again is safe
    if kind is OutcomeKind.ACCOUNT_PAUSED:
        return MediaUploadError(UploadFailure.WAIT, detail, retry_at=None)
    # 400 (size, type, alt text), 403 (no media.write), 404: a person must look.
    return MediaUploadError(UploadFailure.REFUSED, detail)


def _id_and_expiry(answer: Mapping[str, Any]) -> tuple[str, float]:
    data = answer.get("data")
    data = data if isinstance(data, dict) else {}
    media_id = data.get("id") or data.get("media_id_string")
    if not isinstance(media_id, str) or not media_id.isdigit():
        raise MediaUploadError(UploadFailure.TRANSIENT, "X's upload answer carried no media id")
    return media_id, seconds_from_x(data.get("expires_after_secs"), default=86_400.0)


def seconds_from_x(value: object, *, default: float, most: float = 7 * 86_400.0) -> float:
    """A duration X gave, within [0, most]; `default` for anything else. Python's JSON reads
    `NaN`, `Infinity` and `1e999`: int(inf) raised OverflowError out of the writer's send
    step and sleep(nan) failed."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    seconds = float(value)
    if not math.isfinite(seconds):
        return default
    return min(max(seconds, 0.0), most)


def _processing(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    data = answer.get("data")
    info = data.get("processing_info") if isinstance(data, dict) else None
    return info if isinstance(info, dict) else {}


async def _chunks(
    store: MediaStore, attachment: Attachment, size: int
) -> AsyncIterator[tuple[int, bytes]]:
    for index, offset in enumerate(range(0, attachment.size, size)):
        chunk = await store.read(attachment.sha256, offset, size)
        if not chunk:
            raise MediaMissing(attachment.sha256)  # shorter than the request says
        yield index, chunk
