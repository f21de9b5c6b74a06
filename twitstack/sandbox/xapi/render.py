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


def expanded_url(typed: str) -> str:
    """The `expanded_url` X reports for a URL as typed: a scheme is added when none was."""
    return typed if "://" in typed else f"http://{typed}"


def _render(post: StoredPost) -> tuple[str, list[dict[str, Any]]]:
    """The rendered text and its URL entities (indices in code points of the rendered text)."""
    text, pieces, cursor, urls = post.text, [], 0, []
    length = 0
    for found in extract_urls_with_indices(text):
        start, end = found["indices"]
        before = _escape(text[cursor:start])
        link = tco_link(found["url"])
        length += len(before)
        urls.append(
            {
                "start": length,
                "end": length + len(link),
                "url": link,
                "expanded_url": expanded_url(found["url"]),
                "display_url": found["url"].split("://", 1)[-1][:26],
            }
        )
        pieces += [before, link]
        length += len(link)
        cursor = end
    pieces.append(_escape(text[cursor:]))
    rendered = "".join(pieces)
    if post.media_ids:
        media_link = tco_link(f"media:{post.id}")
        start = len(rendered) + 1 if rendered else 0
        rendered = f"{rendered} {media_link}" if rendered else media_link
        # One link in the text for all media; `entities.urls` lists it once per media item,
        # each entry naming its media_key (X's v2 shape for a post with several photos).
        for number, media_id in enumerate(post.media_ids, start=1):
            urls.append(
                {
                    "start": start,
                    "end": start + len(media_link),
                    "url": media_link,
                    "expanded_url": f"https://x.com/i/web/status/{post.id}/photo/{number}",
                    "display_url": "pic.x.com/" + media_link.rsplit("/", 1)[-1],
                    "media_key": f"3_{media_id}",
                }
            )
    return rendered, urls


def rendered_text(post: StoredPost) -> str:
    """The post's text as X returns it: URLs → t.co, `& < >` escaped, a media link appended."""
    return _render(post)[0]


def iso_time(epoch_s: float) -> str:
    """X's timestamp format: ISO 8601 UTC with milliseconds."""
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def tweet_object(post: StoredPost, fields: set[str]) -> dict[str, Any]:
    """A v2 Tweet: the default fields plus any requested `tweet.fields` the fake knows."""
    text, urls = _render(post)
    data: dict[str, Any] = {"id": post.id, "text": text, "edit_history_tweet_ids": [post.id]}
    if "entities" in fields and urls:
        # X lists each t.co link with the URL it stands for (the only way to tell posts that
        # differ only in their links apart on read-back).
        data["entities"] = {"urls": urls}
    if "created_at" in fields:
        data["created_at"] = iso_time(post.created_at)
    if "author_id" in fields:
        data["author_id"] = post.author_id
    if "conversation_id" in fields:
        data["conversation_id"] = post.conversation_id or post.id
    if "in_reply_to_user_id" in fields and post.reply_to_user is not None:
        data["in_reply_to_user_id"] = post.reply_to_user
    if "referenced_tweets" in fields:
        refs = [("replied_to", post.reply_to), ("quoted", post.quote_of)]
        listed = [{"type": kind, "id": ref} for kind, ref in refs if ref is not None]
        if listed:
            data["referenced_tweets"] = listed
    return data


def dm_event_object(message: StoredDirectMessage) -> dict[str, Any]:
    """A v2 DM event of type MessageCreate; its text HTML-escaped like a post's."""
    event: dict[str, Any] = {
        "id": message.id,
        "event_type": "MessageCreate",
        "text": _escape(message.text),
        "sender_id": message.sender_id,
        "dm_conversation_id": message.conversation_id,
        "created_at": iso_time(message.created_at),
    }
    if message.attachments:
        event["attachments"] = {"media_keys": list(message.attachments)}
    return event
