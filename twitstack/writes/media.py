"""Media attached by reference: the attachment record, X's limits, and type sniffing.

A tweet's `payload.media` is either `{"media_ids": [...]}` (ids someone uploaded to X
elsewhere) or `{"attachments": [{sha256, type, size, alt_text?}, ...]}`: files held in the
media store under their SHA-256, which the writer uploads to X at send time. Because the
attachments sit in the payload, the content hash an approval signs covers every file's hash
and alt text: swapping a file or editing its alt text voids the approval.

The limits are X's published ones: images (JPEG, PNG, WebP) up to 5 MB, animated GIF up to
15 MB, MP4 video up to 512 MB; at most 4 images, or 1 GIF, or 1 video per post; alt text up
to 1,000 characters. The type is always sniffed from the file's first bytes, never taken from
a name or a client's Content-Type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twitstack.writes.errors import PayloadError
from twitstack.writes.models import describe

MB = 1024 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
GIF_TYPE = "image/gif"
VIDEO_TYPE = "video/mp4"
MEDIA_TYPES = (*IMAGE_TYPES, GIF_TYPE, VIDEO_TYPE)
MAX_BYTES: Mapping[str, int] = {
    **dict.fromkeys(IMAGE_TYPES, 5 * MB),
    GIF_TYPE: 15 * MB,
    VIDEO_TYPE: 512 * MB,
}
MAX_UPLOAD_BYTES = max(MAX_BYTES.values())
MAX_IMAGES = 4
MAX_ALT_TEXT_CHARS = 1000
# Enough of a file's start to tell every accepted type apart.
SNIFF_BYTES = 16
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
_ATTACHMENT_FIELDS = frozenset({"sha256", "type", "size", "alt_text"})


class MediaRefused(ValueError):
    """An upload breaks a media rule; `reason` is a stable code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}")


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file attached to a post by its content hash."""

    sha256: str
    type: str
    size: int
    alt_text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire form (alt_text left out when there is none)."""
        data: dict[str, Any] = {"sha256": self.sha256, "type": self.type, "size": self.size}
        if self.alt_text is not None:
            data["alt_text"] = self.alt_text
        return data

    @property
    def kind(self) -> str:
        """ "image", "gif" or "video": what X's per-post limits count."""
        return kind_of(self.type)


def kind_of(content_type: str) -> str:
    """The limit class of an accepted content type."""
    if content_type == GIF_TYPE:
        return "gif"
    if content_type == VIDEO_TYPE:
        return "video"
    return "image"


def media_category(content_type: str) -> str:
    """X's `media_category` for an upload of this type."""
    return {"gif": "tweet_gif", "video": "tweet_video"}.get(kind_of(content_type), "tweet_image")


def sniff(head: bytes) -> str | None:
    """The content type the first bytes of a file prove, or None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF_TYPE
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    # ISO base media: a box size, then `ftyp`. Only MP4-family brands X accepts.
    if head[4:8] == b"ftyp" and head[8:12] in (b"isom", b"mp41", b"mp42", b"avc1", b"iso2"):
        return VIDEO_TYPE
    return None


def check_upload(head: bytes, size: int) -> str:
    """The sniffed type of an upload of `size` bytes starting with `head`; raises MediaRefused."""
    if size <= 0:
        raise MediaRefused("empty", "expected a file, found 0 bytes")
    content_type = sniff(head)
    if content_type is None:
        raise MediaRefused(
            "unsupported_type",
            "expected a JPEG, PNG, WebP, GIF or MP4 file (checked from its first bytes), "
            f"found bytes starting {head[:8].hex()}",
        )
    limit = MAX_BYTES[content_type]
    if size > limit:
        raise MediaRefused(
            "too_large",
            f"expected at most {limit // MB} MB for {content_type} (X's limit), found {size} bytes",
        )
    return content_type


def check_mix(kinds: Sequence[str], where: str = "payload.media.attachments") -> None:
    """At most 4 images, or 1 GIF, or 1 video, never mixed; raises PayloadError."""
    if not kinds:
        raise PayloadError(where, "expected 1-4 attachments, found none")
    moving = [k for k in kinds if k != "image"]
    if moving and len(kinds) > 1:
        raise PayloadError(
            where,
            f"expected 1 GIF or 1 video alone (X's limit), found {len(kinds)} attachments "
            f"including a {moving[0]}",
        )
    if len(kinds) > MAX_IMAGES:
        raise PayloadError(
            where, f"expected at most {MAX_IMAGES} images (X's limit), found {len(kinds)}"
        )


def check_alt_text(value: object, where: str) -> str | None:
    """None, or a string of at most 1,000 characters; raises PayloadError."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_ALT_TEXT_CHARS:
        raise PayloadError(
            where,
            f"expected a string of at most {MAX_ALT_TEXT_CHARS} characters, "
            f"found {describe(value)}",
        )
    return value


def parse_attachments(value: object, where: str = "payload.media.attachments") -> list[Attachment]:
    """Strictly parse the `attachments` list of a payload; raises PayloadError."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_IMAGES:
        raise PayloadError(
            where, f"expected a list of 1-{MAX_IMAGES} attachments, found {describe(value)}"
        )
    found: list[Attachment] = []
    for index, item in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise PayloadError(here, f"expected an object, found {describe(item)}")
        unknown = sorted(str(k) for k in item if k not in _ATTACHMENT_FIELDS)
        if unknown:
            raise PayloadError(
                f"{here}.{unknown[0]}",
                f"unknown field; expected one of {', '.join(sorted(_ATTACHMENT_FIELDS))}",
            )
        for name in ("sha256", "type", "size"):
            if name not in item:
                raise PayloadError(f"{here}.{name}", "required in an attachment")
        sha = item["sha256"]
        if not isinstance(sha, str) or SHA256_PATTERN.fullmatch(sha) is None:
            raise PayloadError(
                f"{here}.sha256", f"expected 64 lowercase hex digits, found {describe(sha)}"
            )
        kind = item["type"]
        if kind not in MEDIA_TYPES:
            raise PayloadError(
                f"{here}.type", f"expected one of {', '.join(MEDIA_TYPES)}, found {describe(kind)}"
            )
        size = item["size"]
        if type(size) is not int or not 1 <= size <= MAX_BYTES[kind]:
            raise PayloadError(
                f"{here}.size",
                f"expected an integer 1-{MAX_BYTES[kind]} for {kind}, found {describe(size)}",
            )
        alt = check_alt_text(item.get("alt_text"), f"{here}.alt_text")
        found.append(Attachment(sha, kind, size, alt))
    if len({a.sha256 for a in found}) != len(found):
        raise PayloadError(where, "expected distinct files, found the same sha256 twice")
    check_mix([a.kind for a in found], where)
    return found


def attachments_in(payload: Mapping[str, Any]) -> list[Attachment]:
    """The attachments of an already validated tweet payload (empty when it has none)."""
    media = payload.get("media")
    if not isinstance(media, Mapping) or "attachments" not in media:
        return []
    return parse_attachments(media["attachments"])
