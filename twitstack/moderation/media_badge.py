"""The media badge of a listed request: what it attaches, as a small column the lists read.

`media_of` runs when the history projects a ledger record (and migration 8 computes the same
from stored records in SQL), so queue rows show "2 images", "video" or "GIF" without parsing
each request's payload. The column is `<kind>:<count>`, or "" for a post without media.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twitstack.writes.media import GIF_TYPE, VIDEO_TYPE

_MAX_COUNT = 99


def media_of(payload: Mapping[str, Any]) -> str:
    """`video:1`, `gif:1`, `image:N`, `ids:N` (media ids uploaded elsewhere) or ""."""
    media = payload.get("media")
    if not isinstance(media, Mapping):
        return ""
    listed = media.get("attachments")
    if isinstance(listed, list) and listed:
        types = [a.get("type") for a in listed if isinstance(a, Mapping)]
        kind = "video" if VIDEO_TYPE in types else "gif" if GIF_TYPE in types else "image"
        return f"{kind}:{min(len(listed), _MAX_COUNT)}"
    ids = media.get("media_ids")
    if isinstance(ids, list) and ids:
        return f"ids:{min(len(ids), _MAX_COUNT)}"
    return ""


def media_label(column: object) -> str:
    """The badge text of a stored column: "2 images", "image", "video", "GIF", "1 media id"."""
    kind, _, raw = str(column or "").partition(":")
    count = int(raw) if raw.isdigit() else 0
    if count <= 0:
        return ""
    if kind == "image":
        return "image" if count == 1 else f"{count} images"
    if kind == "video":
        return "video" if count == 1 else f"{count} videos"
    if kind == "gif":
        return "GIF" if count == 1 else f"{count} GIFs"
    if kind == "ids":
        return "1 media id" if count == 1 else f"{count} media ids"
    return ""


# The same as media_of, for rows projected before the column existed.
BACKFILL_SQL = """
UPDATE requests SET media = coalesce((
    SELECT CASE WHEN count(*) = 0 THEN '' ELSE
        CASE
            WHEN sum(json_extract(a.value, '$.type') = 'video/mp4') > 0 THEN 'video:'
            WHEN sum(json_extract(a.value, '$.type') = 'image/gif') > 0 THEN 'gif:'
            ELSE 'image:'
        END || min(count(*), 99)
    END
    FROM json_each(requests.data, '$.payload.media.attachments') AS a), '')
WHERE json_valid(data) AND json_type(data, '$.payload.media.attachments') = 'array';
UPDATE requests
SET media = 'ids:' || min(json_array_length(data, '$.payload.media.media_ids'), 99)
WHERE json_valid(data) AND media = ''
    AND json_type(data, '$.payload.media.media_ids') = 'array'
    AND json_array_length(data, '$.payload.media.media_ids') > 0;
"""
