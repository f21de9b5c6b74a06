"""How X shows content back: t.co links, HTML-escaped text, and the v2 JSON objects."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from twitter_text import extract_urls_with_indices

from twitstack.sandbox.xapi.store import StoredDirectMessage, StoredPost

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def tco_link(target: str) -> str:
    """A stable fake t.co short link for `target`."""
    number = int.from_bytes(hashlib.sha256(target.encode()).digest()[:8], "big")
    code = ""
    for _ in range(10):
        number, digit = divmod(number, 62)
        code += _BASE62[digit]
    return f"https://t.co/{code}"


def _escape(text: str) -> str:
    # X escapes only these three in v2 `text`; quotes come back as typed.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def rendered_text(post: StoredPost) -> str:
    """The post's text as X returns it: URLs → t.co, `& < >` escaped, a media link appended."""
    text, pieces, cursor = post.text, [], 0
    for found in extract_urls_with_indices(text):
        start, end = found["indices"]
        pieces += [_escape(text[cursor:start]), tco_link(found["url"])]
        cursor = end
    pieces.append(_escape(text[cursor:]))
    rendered = "".join(pieces)
    if post.media_ids:
        media_link = tco_link(f"media:{post.id}")
        rendered = f"{rendered} {media_link}" if rendered else media_link
    return rendered


def iso_time(epoch_s: float) -> str:
    """X's timestamp format: ISO 8601 UTC with milliseconds."""
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def tweet_object(post: StoredPost, fields: set[str]) -> dict[str, Any]:
    """A v2 Tweet: the default fields plus any requested `tweet.fields` the fake knows."""
    data: dict[str, Any] = {
        "id": post.id,
        "text": rendered_text(post),
        "edit_history_tweet_ids": [post.id],
    }
    if "created_at" in fields:
        data["created_at"] = iso_time(post.created_at)
    if "author_id" in fields:
        data["author_id"] = post.author_id
    if "referenced_tweets" in fields:
        refs = [("replied_to", post.reply_to), ("quoted", post.quote_of)]
        listed = [{"type": kind, "id": ref} for kind, ref in refs if ref is not None]
        if listed:
            data["referenced_tweets"] = listed
    return data


def dm_event_object(message: StoredDirectMessage) -> dict[str, Any]:
    """A v2 DM event of type MessageCreate."""
    event: dict[str, Any] = {
        "id": message.id,
        "event_type": "MessageCreate",
        "text": message.text,
        "sender_id": message.sender_id,
        "dm_conversation_id": message.conversation_id,
        "created_at": iso_time(message.created_at),
    }
    if message.attachments:
        event["attachments"] = {"media_keys": list(message.attachments)}
    return event
