"""Validation of POST /2/tweets and DM bodies the way X's API checks them (research §3.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from twitter_text import parse_tweet

_ID = re.compile(r"^[0-9]{1,19}$")
_TWEET_FIELDS = {
    "text", "reply", "quote_tweet_id", "media", "poll", "reply_settings",
    "for_super_followers_only", "nullcast", "geo", "card_uri", "direct_message_deep_link",
    "community_id", "share_with_followers", "edit_options",
}  # fmt: skip
_BOOL_FIELDS = ("for_super_followers_only", "nullcast", "share_with_followers")
_EXCLUSIVE = ("media", "poll", "quote_tweet_id", "card_uri")
_REPLY_SETTINGS = {"following", "mentionedUsers", "subscribers", "verified"}
DM_MAX_CHARS = 10_000

Problem = tuple[str, Any, str]  # (parameter, value, message) as in X's invalid-request errors


@dataclass
class TweetRequest:
    """A validated create-post body."""

    text: str
    reply_to: str | None = None
    quote_of: str | None = None
    media_ids: tuple[str, ...] = ()
    problems: list[Problem] = field(default_factory=list)
    text_problem: str | None = None  # invalid text is reported with a configurable status


def _is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.match(value) is not None


def _check_keys(obj: dict[str, Any], allowed: set[str], where: str) -> list[Problem]:
    return [
        (f"{where}.{key}", obj[key], f"The `{where}.{key}` field is not allowed.")
        for key in obj
        if key not in allowed
    ]


def _check_reply(reply: object) -> list[Problem]:
    if not isinstance(reply, dict):
        return [("reply", reply, "The `reply` field must be an object.")]
    allowed = {"in_reply_to_tweet_id", "exclude_reply_user_ids", "auto_populate_reply_metadata"}
    found = _check_keys(reply, allowed, "reply")
    target = reply.get("in_reply_to_tweet_id")
    if not _is_id(target):
        found.append(("reply.in_reply_to_tweet_id", target, "must be a numeric id string"))
    excluded = reply.get("exclude_reply_user_ids", [])
    if not isinstance(excluded, list) or not all(_is_id(i) for i in excluded):
        found.append(("reply.exclude_reply_user_ids", excluded, "must be a list of ids"))
    return found


def _check_media(media: object) -> list[Problem]:
    if not isinstance(media, dict):
        return [("media", media, "The `media` field must be an object.")]
    found = _check_keys(media, {"media_ids", "tagged_user_ids"}, "media")
    ids = media.get("media_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 4 or not all(_is_id(i) for i in ids):
        found.append(("media.media_ids", ids, "must hold 1 to 4 media id strings"))
    tagged = media.get("tagged_user_ids", [])
    if not isinstance(tagged, list) or len(tagged) > 10 or not all(_is_id(i) for i in tagged):
        found.append(("media.tagged_user_ids", tagged, "must hold at most 10 user ids"))
    return found


def _check_poll(poll: object) -> list[Problem]:
    if not isinstance(poll, dict):
        return [("poll", poll, "The `poll` field must be an object.")]
    found = _check_keys(poll, {"options", "duration_minutes", "reply_settings"}, "poll")
    options = poll.get("options")
    if (
        not isinstance(options, list)
        or not 2 <= len(options) <= 4
        or not all(isinstance(o, str) and 1 <= len(o) <= 25 for o in options)
    ):
        found.append(("poll.options", options, "must hold 2 to 4 options of 1 to 25 characters"))
    minutes = poll.get("duration_minutes")
    if type(minutes) is not int or not 5 <= minutes <= 10_080:
        found.append(("poll.duration_minutes", minutes, "must be an integer from 5 to 10080"))
    if "reply_settings" in poll and poll["reply_settings"] not in _REPLY_SETTINGS:
        found.append(("poll.reply_settings", poll["reply_settings"], "unknown reply setting"))
    return found


def validate_tweet(body: object) -> TweetRequest:
    """Check a create-post body; problems (and a text problem) are collected, not raised."""
    if not isinstance(body, dict):
        return TweetRequest(text="", problems=[("body", body, "The body must be a JSON object.")])
    found = _check_keys(body, _TWEET_FIELDS, "body")
    present = [name for name in _EXCLUSIVE if name in body]
    if len(present) > 1:
        message = f"{', '.join(present)} are mutually exclusive"
        found.append((present[1], body[present[1]], message))
    if "reply" in body:
        found += _check_reply(body["reply"])
    if "media" in body:
        found += _check_media(body["media"])
    if "poll" in body:
        found += _check_poll(body["poll"])
    if "quote_tweet_id" in body and not _is_id(body["quote_tweet_id"]):
        found.append(("quote_tweet_id", body["quote_tweet_id"], "must be a numeric id string"))
    if "reply_settings" in body and body["reply_settings"] not in _REPLY_SETTINGS:
        found.append(("reply_settings", body["reply_settings"], "unknown reply setting"))
    found += [(n, body[n], f"`{n}` must be a boolean") for n in _BOOL_FIELDS
              if n in body and not isinstance(body[n], bool)]  # fmt: skip
    text = body.get("text", "")
    request = TweetRequest(text=text if isinstance(text, str) else "", problems=found)
    if not isinstance(text, str):
        found.append(("text", text, "The `text` field must be a string."))
    # Text may be empty only when media or a card carries the post.
    elif (text or not ("media" in body or "card_uri" in body)) and not parse_tweet(text).valid:
        request.text_problem = "The `text` field is empty, too long or has invalid characters."
    if not found:
        reply, media = body.get("reply"), body.get("media")
        request.reply_to = reply["in_reply_to_tweet_id"] if isinstance(reply, dict) else None
        request.quote_of = body.get("quote_tweet_id")
        request.media_ids = tuple(media["media_ids"]) if isinstance(media, dict) else ()
    return request


def validate_dm(body: object) -> tuple[str, tuple[str, ...], list[Problem]]:
    """Check a DM body: text (≤ 10,000 characters) and/or one media attachment."""
    if not isinstance(body, dict):
        return "", (), [("body", body, "The body must be a JSON object.")]
    found = _check_keys(body, {"text", "attachments"}, "body")
    text = body.get("text", "")
    if not isinstance(text, str) or len(text) > DM_MAX_CHARS:
        found.append(("text", text, f"must be a string of at most {DM_MAX_CHARS} characters"))
        text = ""
    attachments = body.get("attachments", [])
    media: tuple[str, ...] = ()
    if (
        not isinstance(attachments, list)
        or len(attachments) > 1
        or not all(isinstance(a, dict) and _is_id(a.get("media_id")) for a in attachments)
    ):
        found.append(("attachments", attachments, "must hold at most one {media_id} object"))
    else:
        media = tuple(a["media_id"] for a in attachments)
    if not text and not media and not found:
        found.append(("text", text, "a message needs text or an attachment"))
    return text, media, found
