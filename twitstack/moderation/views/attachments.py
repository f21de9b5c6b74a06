"""What a request sends besides its text (quote, poll, media, reply), for the approval screen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twitstack.moderation.policy import PolicyWarning
from twitstack.writes.media import SHA256_PATTERN, VIDEO_TYPE
from twitstack.writes.validation import is_snowflake_id


def post_link(tweet_id: object) -> str | None:
    """The X link of a post id (only ever built from digits, so it is safe to render)."""
    return f"https://x.com/i/web/status/{tweet_id}" if is_snowflake_id(tweet_id) else None


@dataclass(frozen=True)
class MediaItem:
    """One attached file as a reviewer sees it: a thumbnail (images, GIFs animate), a video
    with its poster frame, or a placeholder for anything else."""

    sha256: str
    type: str
    size: int
    alt_text: str | None

    @property
    def is_image(self) -> bool:
        return self.type.startswith("image/")

    @property
    def is_video(self) -> bool:
        return self.type == VIDEO_TYPE

    @property
    def url(self) -> str | None:
        """The thumbnail route (only ever built from 64 hex digits)."""
        return f"/media/{self.sha256}" if SHA256_PATTERN.fullmatch(self.sha256) else None


def _media_items(media: object) -> tuple[MediaItem, ...]:
    listed = media.get("attachments") if isinstance(media, Mapping) else None
    items: list[MediaItem] = []
    for entry in listed[:8] if isinstance(listed, list) else []:
        if not isinstance(entry, Mapping):
            continue
        alt = entry.get("alt_text")
        size = entry.get("size")
        items.append(
            MediaItem(
                sha256=_text(entry.get("sha256"), 64),
                type=_text(entry.get("type"), 32),
                size=size if type(size) is int else 0,
                alt_text=alt[:1000] if isinstance(alt, str) and alt.strip() else None,
            )
        )
    return tuple(items)


@dataclass(frozen=True)
class Attachments:
    """The parts of a payload a moderator must see before approving, and what to watch for."""

    quote_tweet_id: str | None = None
    reply_to_id: str | None = None
    poll_options: tuple[str, ...] = ()
    poll_minutes: int | None = None
    media_ids: tuple[str, ...] = ()
    media: tuple[MediaItem, ...] = ()
    recipient_id: str | None = None
    warnings: list[PolicyWarning] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(
            self.quote_tweet_id
            or self.reply_to_id
            or self.poll_options
            or self.media_ids
            or self.media
            or self.recipient_id
        )


def _text(value: object, limit: int = 100) -> str:
    return value[:limit] if isinstance(value, str) else repr(value)[:limit]


def attachments_of(action: str, payload: Mapping[str, Any]) -> Attachments:
    """Everything but the text, as strings fit to show; odd shapes are shown, not trusted."""
    warnings: list[PolicyWarning] = []
    quote = payload.get("quote_tweet_id")
    reply = payload.get("reply")
    reply_to = reply.get("in_reply_to_tweet_id") if isinstance(reply, Mapping) else None
    poll = payload.get("poll")
    options: tuple[str, ...] = ()
    minutes: int | None = None
    if isinstance(poll, Mapping):
        raw_options = poll.get("options")
        options = tuple(_text(o, 40) for o in raw_options) if isinstance(raw_options, list) else ()
        duration = poll.get("duration_minutes")
        minutes = duration if type(duration) is int else None
    media = payload.get("media")
    raw_ids = media.get("media_ids") if isinstance(media, Mapping) else None
    media_ids = tuple(_text(i, 25) for i in raw_ids) if isinstance(raw_ids, list) else ()
    media_items = _media_items(media)
    recipient = payload.get("recipient_id") if action == "dm" else None
    if quote is not None:
        warnings.append(
            PolicyWarning(
                "quote",
                f"Quotes post {_text(quote, 25)}: it appears under this post with the account's "
                "name on it. Open it and read it before approving.",
                "warn",
            )
        )
    if options:
        warnings.append(
            PolicyWarning(
                "poll",
                f"Adds a poll with {len(options)} options; neither options nor duration can be "
                "changed once it is posted.",
                "info",
            )
        )
    if media_ids:
        warnings.append(
            PolicyWarning(
                "media",
                f"Attaches {len(media_ids)} media item(s) by id: they cannot be previewed here. "
                "Approve only if you know what they show.",
                "warn",
            )
        )
    missing_alt = [n for n, item in enumerate(media_items, start=1) if item.alt_text is None]
    if missing_alt:
        numbers = ", ".join(str(n) for n in missing_alt)
        warnings.append(
            PolicyWarning(
                "missing_alt_text",
                f"Media {numbers} has no alt text: people using screen readers will not know "
                "what it shows. Edit the request to add a description.",
                "warn",
            )
        )
    return Attachments(
        quote_tweet_id=_text(quote, 25) if quote is not None else None,
        reply_to_id=_text(reply_to, 25) if reply_to is not None else None,
        poll_options=options,
        poll_minutes=minutes,
        media_ids=media_ids,
        media=media_items,
        recipient_id=_text(recipient, 25) if recipient is not None else None,
        warnings=warnings,
    )
