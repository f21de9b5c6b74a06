"""Handlers for X's v2 media upload: simple, chunked (initialize/append/finalize), STATUS, alt text.

Shapes as X documents them:
- `POST /2/media/upload` (multipart: `media`, `media_category`[, `media_type`]) → 200
  `{"data": {"id", "media_key", "size", "expires_after_secs", "image": {"image_type"}}}`.
- `POST /2/media/upload/initialize` (JSON `media_type`, `total_bytes`, `media_category`) → 200
  `{"data": {"id", "media_key", "expires_after_secs"}}`.
- `POST /2/media/upload/{id}/append` (multipart: `media`, `segment_index`) → 200
  `{"data": {"expires_at"}}`.
- `POST /2/media/upload/{id}/finalize` → 200 `{"data": {"id", "media_key", "size",
  "expires_after_secs", "processing_info": {"state": "pending", "check_after_secs"}}}`.
- `GET /2/media/upload?command=STATUS&media_id=` → 200 `{"data": {"id", "media_key",
  "processing_info": {"state", "check_after_secs", "progress_percent"[, "error"]}}}`.
- `POST /2/media/metadata` (JSON `{"id", "metadata": {"alt_text": {"text"}}}`) → 200
  `{"data": {"id", "associated_metadata": {"alt_text": {"text"}}}}`.
"""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from twitstack.sandbox.xapi import problems
from twitstack.sandbox.xapi.media import (
    CATEGORIES,
    EXPIRES_AFTER_S,
    LIMITS,
    MAX_ALT_TEXT,
    MAX_SEGMENT_BYTES,
    SandboxMedia,
    sniff,
)
from twitstack.sandbox.xapi.pipeline import ApiCall, ApiResult, json_body

_CHUNKED_ONLY = {"video/mp4"}


def _invalid(parameter: str, value: Any, message: str) -> ApiResult:
    return ApiResult(400, problems.invalid_request([(parameter, value, message)]), problem=True)


def _form(call: ApiCall) -> dict[str, bytes] | None:
    """The fields of a multipart/form-data body, or None when it is not one."""
    content_type = call.request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + call.body
    )
    if not message.is_multipart():
        return None
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields


def _mine(call: ApiCall, media_id: str) -> SandboxMedia | None:
    item = call.state.media.items.get(media_id)
    return item if item is not None and item.owner_id == call.user_id else None


def _not_found(media_id: str) -> ApiResult:
    body = {**problems.resource_not_found("media", "id", media_id), "status": 404}
    return ApiResult(404, body, problem=True)


def upload_simple(call: ApiCall) -> ApiResult:
    """POST /2/media/upload: one image in one request."""
    fields = _form(call)
    if fields is None or "media" not in fields:
        return _invalid("media", None, "The `media` field is required (multipart/form-data).")
    data = fields["media"]
    category = fields.get("media_category", b"tweet_image").decode("latin-1")
    if category not in CATEGORIES:
        return _invalid("media_category", category, "Unknown media_category.")
    media_type = sniff(data[:16])
    if media_type is None:
        return _invalid("media", None, "Unsupported media type.")
    if media_type in _CHUNKED_ONLY or category.endswith("_video"):
        return _invalid("media", media_type, "Video must be uploaded with the chunked upload.")
    if len(data) > LIMITS[media_type]:
        return _invalid("media", len(data), f"File size exceeds {LIMITS[media_type]} bytes.")
    registry = call.state.media
    item = registry.create(
        call.state.content.ids.next_id(), call.user_id, media_type, category, len(data)
    )
    registry.complete_simple(item, data)
    return ApiResult(
        200,
        {
            "data": {
                "id": item.id,
                "media_key": item.key,
                "size": item.total_bytes,
                "expires_after_secs": EXPIRES_AFTER_S,
                "image": {"image_type": media_type},
            }
        },
    )


def initialize(call: ApiCall) -> ApiResult:
    """POST /2/media/upload/initialize: declare type, size and category."""
    body, error = json_body(call)
    if error is not None:
        return error
    if not isinstance(body, dict):
        return _invalid("body", body, "Body must be a JSON object.")
    media_type, total = body.get("media_type"), body.get("total_bytes")
    category = body.get("media_category", "tweet_video")
    if media_type not in LIMITS:
        return _invalid("media_type", media_type, "Unsupported media_type.")
    if type(total) is not int or total <= 0:
        return _invalid("total_bytes", total, "total_bytes must be a positive integer.")
    if total > LIMITS[media_type]:
        return _invalid("total_bytes", total, f"File size exceeds {LIMITS[media_type]} bytes.")
    if category not in CATEGORIES:
        return _invalid("media_category", category, "Unknown media_category.")
    item = call.state.media.create(
        call.state.content.ids.next_id(), call.user_id, media_type, category, total
    )
    data = {"id": item.id, "media_key": item.key, "expires_after_secs": EXPIRES_AFTER_S}
    return ApiResult(200, {"data": data})


def append(call: ApiCall) -> ApiResult:
    """POST /2/media/upload/{id}/append: one segment (at most 5 MB)."""
    media_id: str = call.request.path_params["id"]
    item = _mine(call, media_id)
    if item is None:
        return _not_found(media_id)
    if item.state != "uploading":
        return _invalid("id", media_id, "Media is already finalized.")
    fields = _form(call)
    if fields is None or "media" not in fields or "segment_index" not in fields:
        return _invalid("media", None, "`media` and `segment_index` are required.")
    try:
        index = int(fields["segment_index"])
    except ValueError:
        index = -1
    if not 0 <= index <= 999:
        return _invalid("segment_index", fields["segment_index"].decode("latin-1"), "0-999.")
    segment = fields["media"]
    if len(segment) > MAX_SEGMENT_BYTES:
        return _invalid("media", len(segment), f"Segments are at most {MAX_SEGMENT_BYTES} bytes.")
    if index == 0 and sniff(segment[:16]) != item.media_type:
        return _invalid("media", item.media_type, "Media content does not match media_type.")
    item.segments[index] = segment
    if item.received > item.total_bytes:
        return _invalid("media", item.received, "More bytes than total_bytes.")
    return ApiResult(200, {"data": {"expires_at": int(item.expires_at)}})


def finalize(call: ApiCall) -> ApiResult:
    """POST /2/media/upload/{id}/finalize: all bytes are in; processing starts."""
    media_id: str = call.request.path_params["id"]
    item = _mine(call, media_id)
    if item is None:
        return _not_found(media_id)
    if item.state == "uploading":
        if item.received != item.total_bytes or sorted(item.segments) != list(
            range(len(item.segments))
        ):
            return _invalid(
                "id", media_id, f"Received {item.received} of {item.total_bytes} bytes."
            )
        call.state.media.finalize(item)
    data: dict[str, Any] = {
        "id": item.id,
        "media_key": item.key,
        "size": item.total_bytes,
        "expires_after_secs": max(int(item.expires_at - call.state.clock.now()), 0),
        "processing_info": _processing(item),
    }
    return ApiResult(200, {"data": data})


def _processing(item: SandboxMedia) -> dict[str, Any]:
    info: dict[str, Any] = {"state": item.state}
    if item.state in ("pending", "in_progress"):
        info["check_after_secs"] = 1
        info["progress_percent"] = 0 if item.state == "pending" else 50
    else:
        info["progress_percent"] = 100
    if item.state == "failed":
        info["error"] = {"code": 1, "name": "InvalidMedia", "message": "Unsupported video format"}
    return info


def status(call: ApiCall) -> ApiResult:
    """GET /2/media/upload?command=STATUS&media_id=: processing state, one step per poll."""
    query = call.request.query_params
    if query.get("command", "STATUS") != "STATUS":
        return _invalid("command", query.get("command"), "Only STATUS is supported here.")
    media_id = query.get("media_id", "")
    item = _mine(call, media_id)
    if item is None:
        return _not_found(media_id)
    call.state.media.poll(item)
    data = {"id": item.id, "media_key": item.key, "processing_info": _processing(item)}
    return ApiResult(200, {"data": data})


def metadata(call: ApiCall) -> ApiResult:
    """POST /2/media/metadata: set alt text (at most 1,000 characters)."""
    body, error = json_body(call)
    if error is not None:
        return error
    media_id = body.get("id") if isinstance(body, dict) else None
    meta = body.get("metadata") if isinstance(body, dict) else None
    alt = meta.get("alt_text") if isinstance(meta, dict) else None
    text = alt.get("text") if isinstance(alt, dict) else None
    if not isinstance(media_id, str):
        return _invalid("id", media_id, "The `id` field is required.")
    if not isinstance(text, str) or len(text) > MAX_ALT_TEXT:
        return _invalid("metadata.alt_text.text", text, f"At most {MAX_ALT_TEXT} characters.")
    item = _mine(call, media_id)
    if item is None:
        return _not_found(media_id)
    item.alt_text = text
    data = {"id": item.id, "associated_metadata": {"alt_text": {"text": text}}}
    return ApiResult(200, {"data": data})
