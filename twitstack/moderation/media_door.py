"""Media through the moderation service: uploads (API and the New form), checks that a
request's attachments are in the store, and serving images to signed-in reviewers.

Uploads are streamed into the media store (hash, sniffed type, X's size limits) and answered
with the attachment record a request carries. Only images and MP4 video are ever served back
(video in byte ranges, for its poster frame), with the content type sniffed from their bytes,
`nosniff` and a CSP that runs nothing, so a file that is not what it claims can never become a
page on this origin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from twitstack.core.logging import get_logger
from twitstack.moderation import media_quota
from twitstack.moderation.access import deps_of, principal_of, read_form
from twitstack.moderation.deps import ModerationDeps
from twitstack.moderation.media_ranges import MAX_RANGE_BYTES, RangeNotSatisfiable, parse_range
from twitstack.writes.errors import WireFormatError
from twitstack.writes.media import (
    GIF_TYPE,
    IMAGE_TYPES,
    MEDIA_TYPES,
    SHA256_PATTERN,
    VIDEO_TYPE,
    Attachment,
    MediaRefused,
    attachments_in,
)
from twitstack.writes.media_store import MediaMissing, StoredMedia, ingest, is_store_error

_log = get_logger("twitstack.moderation.media")
_SHOWN_TYPES = frozenset({*IMAGE_TYPES, GIF_TYPE, VIDEO_TYPE})
_EXTENSIONS = {
    "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif",
    VIDEO_TYPE: "mp4",
}  # fmt: skip
_STATUS = {"too_large": 413, "unsupported_type": 415, "empty": 422, "no_space": 507}
READ_BYTES = 1024 * 1024
FORM_SLOTS = 4  # file inputs on the New form (X's limit of images per post)


class MediaDoorError(Exception):
    """An upload or attachment refused; `status` and `message` make the 4xx answer."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        self.status = status
        self.message = message
        self.field = field
        super().__init__(message)


async def _upload_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    for _ in range(1_000_000):  # bounded: 1 MB reads of at most the largest upload
        chunk = await upload.read(READ_BYTES)
        if not chunk:
            return
        yield chunk


async def store_upload(
    deps: ModerationDeps,
    chunks: AsyncIterator[bytes],
    *,
    uploader: int,
    declared: str | None = None,
) -> StoredMedia:
    """Ingest one upload by user `uploader` into the store, within their daily budget;
    raises MediaDoorError with the 4xx to answer."""
    limit = deps.media_user_day_bytes
    if limit > 0 and await media_quota.used_today(deps.redis, uploader, deps.clock()) >= limit:
        _log.warning("moderation.media_quota_exceeded", user_id=uploader)
        raise MediaDoorError(429, media_quota.over_budget_message(limit))
    try:
        async with deps.media_store() as store:
            info = await ingest(
                store, chunks, tmp_dir=deps.media_tmp_dir,
                min_free_bytes=deps.media_min_free_bytes,
            )  # fmt: skip
    except MediaRefused as exc:
        if exc.reason == "no_space":
            _log.warning("moderation.media_no_space", min_free_bytes=deps.media_min_free_bytes)
        raise MediaDoorError(_STATUS.get(exc.reason, 422), exc.message) from None
    except Exception as exc:
        if not is_store_error(exc):
            raise
        _log.warning("moderation.media_store_failed", error=type(exc).__name__)
        raise MediaDoorError(503, "the media store is unavailable; try again") from None
    await media_quota.charge(deps.redis, uploader, info.size, deps.clock())
    if declared is not None and declared in MEDIA_TYPES and declared != info.type:
        # Kept (it is a valid file under its own hash), but the client said otherwise.
        raise MediaDoorError(415, f"declared {declared}, but the bytes are {info.type}")
    return info


async def upload_form_file(
    deps: ModerationDeps, upload: UploadFile, *, uploader: int
) -> StoredMedia:
    """One file of a multipart form (the client's filename and type are never used)."""
    return await store_upload(deps, _upload_chunks(upload), uploader=uploader)


async def check_attachments(deps: ModerationDeps, payload: object) -> None:
    """Every attachment of a (tweet) payload is in the store with its recorded size and type.

    Raises MediaDoorError(422) naming the first that is not; a payload that is not a valid
    attachment list is left to the decoder, which names the field.
    """
    if not isinstance(payload, Mapping):
        return
    try:
        attachments = attachments_in(payload)
    except WireFormatError:
        return
    if not attachments:
        return
    try:
        await _check_stored(deps, attachments)
    except Exception as exc:
        if not is_store_error(exc):
            raise
        raise MediaDoorError(503, "the media store is unavailable; try again") from None


async def _check_stored(deps: ModerationDeps, attachments: list[Attachment]) -> None:
    async with deps.media_store() as store:
        for index, attachment in enumerate(attachments):
            field = f"payload.media.attachments[{index}]"
            found = await store.head(attachment.sha256)
            if found is None:
                raise MediaDoorError(
                    422, f"{field}.sha256: unknown file {attachment.sha256}; upload it first",
                    f"{field}.sha256",
                )  # fmt: skip
            if (found.size, found.type) != (attachment.size, attachment.type):
                raise MediaDoorError(
                    422, f"{field}: the stored file is {found.type} of {found.size} bytes, "
                    f"not {attachment.type} of {attachment.size}", field,
                )  # fmt: skip


def attachment_of(info: StoredMedia, alt_text: str | None) -> dict[str, Any]:
    """The attachment record for an uploaded file."""
    return Attachment(info.sha256, info.type, info.size, alt_text or None).to_dict()


def with_alt_texts(payload: dict[str, Any], form: Mapping[str, Any]) -> dict[str, Any]:
    """The payload with each attachment's alt text from the edit form's `alt1`..`alt4`
    (a field left out keeps the alt text; an emptied one removes it)."""
    media = payload.get("media")
    if not isinstance(media, Mapping) or not isinstance(media.get("attachments"), list):
        return payload
    listed: list[Any] = media["attachments"]
    edited = []
    for number, entry in enumerate(listed, start=1):
        field = form.get(f"alt{number}")
        if not isinstance(entry, Mapping) or not isinstance(field, str):
            edited.append(entry)
            continue
        alt = field.replace("\r\n", "\n").strip()
        kept = {k: v for k, v in entry.items() if k != "alt_text"}
        edited.append({**kept, "alt_text": alt} if alt else kept)
    return {**payload, "media": {**media, "attachments": edited}}


async def form_attachments(
    deps: ModerationDeps, form: Mapping[str, Any], *, uploader: int
) -> list[dict[str, Any]]:
    """The New form's files `media1`..`media4` with alt texts `alt1`..`alt4`, stored."""
    found: list[dict[str, Any]] = []
    for number in range(1, FORM_SLOTS + 1):
        upload = form.get(f"media{number}")
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue  # an empty file input
        info = await upload_form_file(deps, upload, uploader=uploader)
        alt = str(form.get(f"alt{number}", "")).replace("\r\n", "\n").strip()
        found.append(attachment_of(info, alt))
    return found


async def upload_media(request: Request) -> Response:
    """POST /api/media: a raw body (Content-Type: image/png, ...) or multipart field `file`.

    Answers 201 with `{sha256, type, size}` (the attachment record without alt text).
    """
    deps = deps_of(request)
    uploader = principal_of(request).user.id
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "multipart/form-data":
            try:
                form = await read_form(request)
            except HTTPException as exc:
                # Starlette answers a malformed multipart body with a bare 400; the door's
                # contract is 422 with a message naming the field.
                raise MediaDoorError(
                    422, f"file: unreadable multipart body ({exc.detail})"
                ) from exc
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise MediaDoorError(422, "file: expected one file in the multipart field `file`")
            info = await upload_form_file(deps, upload, uploader=uploader)
        else:
            info = await store_upload(
                deps, request.stream(), uploader=uploader, declared=content_type or None
            )
    except MediaDoorError as exc:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)
    body = {"sha256": info.sha256, "type": info.type, "size": info.size}
    return JSONResponse(body, status_code=201)


async def serve_media(request: Request) -> Response:
    """GET /media/{sha256}: an image or video from the store, for review pages.

    Answers `Range` requests with 206 (one range, at most `MAX_RANGE_BYTES`) so a `<video>`
    reads only the parts it shows; a whole video without `Range` is streamed in chunks.
    """
    deps = deps_of(request)
    sha = str(request.path_params["sha256"])
    if SHA256_PATTERN.fullmatch(sha) is None:
        return _not_found()
    wanted = request.headers.get("range")
    try:
        async with deps.media_store() as store:
            found = await store.head(sha)
            if found is None or found.type not in _SHOWN_TYPES:
                return _not_found()
            headers = {
                "X-Content-Type-Options": "nosniff",
                "Content-Disposition": f'inline; filename="{sha}.{_EXTENSIONS[found.type]}"',
                "Accept-Ranges": "bytes",
                "ETag": f'"{sha}"',  # content-addressed: the bytes never change
            }  # the security middleware adds the sandboxing CSP and no-store
            if wanted is not None:
                try:
                    part = parse_range(wanted, found.size)
                except RangeNotSatisfiable as exc:
                    headers["Content-Range"] = f"bytes */{found.size}"
                    return Response(f"416: {exc}", 416, headers, media_type="text/plain")
                data = await store.read(sha, part.start, part.length)
                headers["Content-Range"] = part.content_range
                return Response(data, 206, headers, media_type=found.type)
            if found.type == VIDEO_TYPE:
                return StreamingResponse(
                    _stream(deps, sha, found.size), 200, headers, media_type=found.type
                )
            data = await store.read(sha)
    except MediaMissing:
        return _not_found()  # pruned between head and read
    except Exception as exc:
        if not is_store_error(exc):
            raise
        return Response("503: the media store is unavailable", status_code=503)
    return Response(data, media_type=found.type, headers=headers)


def _not_found() -> Response:
    return Response("404: no such image or video", status_code=404, media_type="text/plain")


async def _stream(deps: ModerationDeps, sha: str, size: int) -> AsyncIterator[bytes]:
    """A whole stored file in `MAX_RANGE_BYTES` reads (bounded by its size).

    The status line is sent by then, so a store that fails midway ends the body short (the
    client sees a truncated download) instead of raising into the server.
    """
    try:
        async with deps.media_store() as store:
            for offset in range(0, size, MAX_RANGE_BYTES):
                yield await store.read(sha, offset, min(MAX_RANGE_BYTES, size - offset))
    except MediaMissing:
        _log.warning("moderation.media_gone_while_served", sha256=sha)
    except Exception as exc:
        if not is_store_error(exc):
            raise
        _log.warning("moderation.media_store_failed", error=type(exc).__name__)
