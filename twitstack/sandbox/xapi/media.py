"""What the fake X knows about uploaded media: ids, bytes received, processing, alt text, expiry.

X's v2 media upload, as documented: images go up in one `POST /2/media/upload`; videos and
GIFs in chunks (`initialize`, `append` per segment, `finalize`), after which X processes them
and `GET /2/media/upload?command=STATUS` reports `pending` → `in_progress` → `succeeded` (or
`failed`). Every media id expires `expires_after_secs` (about 24 h) after upload, and a post
naming an unknown, foreign, unprocessed or expired id is refused.

Processing advances one step per STATUS poll (deterministic for tests):
`processing_polls` polls after FINALIZE a video or GIF is `succeeded`, or `failed` when
`fail_processing` is set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from twitstack.sandbox.xapi.clock import SandboxClock

MB = 1024 * 1024
EXPIRES_AFTER_S = 86_400
MAX_SEGMENT_BYTES = 5 * MB
MAX_ALT_TEXT = 1000
LIMITS = {
    "image/jpeg": 5 * MB,
    "image/png": 5 * MB,
    "image/webp": 5 * MB,
    "image/gif": 15 * MB,
    "video/mp4": 512 * MB,
}
CATEGORIES = {"tweet_image", "tweet_gif", "tweet_video", "dm_image", "dm_gif", "dm_video"}


def sniff(head: bytes) -> str | None:
    """The media type X would detect from a file's first bytes."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return None


def media_key(media_id: str, media_type: str) -> str:
    """X's media key: 3_ for photos, 16_ for animated GIFs, 7_ for videos."""
    prefix = {"image/gif": "16", "video/mp4": "7"}.get(media_type, "3")
    return f"{prefix}_{media_id}"


@dataclass
class SandboxMedia:
    """One upload."""

    id: str
    owner_id: str
    media_type: str
    category: str
    total_bytes: int
    created_at: float
    expires_at: float
    segments: dict[int, bytes] = field(default_factory=dict)
    state: str = "uploading"  # uploading | pending | in_progress | succeeded | failed
    polls: int = 0
    sha256: str | None = None
    alt_text: str | None = None

    @property
    def key(self) -> str:
        return media_key(self.id, self.media_type)

    @property
    def received(self) -> int:
        return sum(len(part) for part in self.segments.values())


class MediaRegistry:
    """All media uploaded to the fake; nothing here awaits, so each call is atomic."""

    def __init__(
        self, clock: SandboxClock, *, processing_polls: int = 2, fail_processing: bool = False
    ) -> None:
        self._clock = clock
        self.items: dict[str, SandboxMedia] = {}
        self.processing_polls = processing_polls
        self.fail_processing = fail_processing
        self.uploads = 0  # completed uploads (simple or finalized), for tests and the bench

    def create(
        self, media_id: str, owner_id: str, media_type: str, category: str, total_bytes: int
    ) -> SandboxMedia:
        now = self._clock.now()
        item = SandboxMedia(
            media_id, owner_id, media_type, category, total_bytes, now, now + EXPIRES_AFTER_S
        )
        self.items[media_id] = item
        return item

    def complete_simple(self, item: SandboxMedia, data: bytes) -> None:
        item.segments = {0: data}
        item.sha256 = hashlib.sha256(data).hexdigest()
        item.state = "succeeded"
        self.uploads += 1

    def finalize(self, item: SandboxMedia) -> None:
        data = b"".join(item.segments[i] for i in sorted(item.segments))
        item.sha256 = hashlib.sha256(data).hexdigest()
        item.state = "pending"
        item.segments = {0: data[:16]}  # the fake keeps the hash, not 512 MB per video
        self.uploads += 1

    def poll(self, item: SandboxMedia) -> None:
        """One STATUS check: pending → in_progress → … → succeeded (or failed)."""
        if item.state not in ("pending", "in_progress"):
            return
        item.polls += 1
        if item.polls >= self.processing_polls:
            item.state = "failed" if self.fail_processing else "succeeded"
        else:
            item.state = "in_progress"

    def live(self, media_id: str, owner_id: str) -> SandboxMedia | None:
        """The media if `owner_id` may post it now: known, theirs, processed, not expired."""
        item = self.items.get(media_id)
        if item is None or item.owner_id != owner_id or item.state != "succeeded":
            return None
        if self._clock.now() >= item.expires_at:
            return None
        return item

    def clear(self) -> None:
        self.items.clear()
        self.uploads = 0
