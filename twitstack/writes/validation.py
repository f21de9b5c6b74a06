"""Payload rules per action: what a tweet, DM, delete or thread may carry, checked strictly."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from twitstack.writes.errors import PayloadError
from twitstack.writes.media import parse_attachments
from twitstack.writes.models import WriteAction, WriteRequest, describe
from twitstack.writes.text import (
    MAX_TWEET_RAW_CHARS,
    MAX_TWEET_WEIGHTED_LENGTH,
    first_invalid_character,
    nfc,
    tweet_weighted_length,
)

MAX_DM_CHARS = 10_000
MAX_MEDIA_IDS = 4
POLL_OPTIONS = (2, 4)
POLL_OPTION_CHARS = (1, 25)
POLL_DURATION_MINUTES = (5, 10_080)
MAX_EXCLUDED_REPLY_USERS = 50
_ID = re.compile(r"[0-9]{1,19}")
_TWEET_FIELDS = frozenset({"text", "reply", "quote_tweet_id", "media", "poll"})
_EXCLUSIVE = ("media", "poll", "quote_tweet_id")


def validate_request(request: WriteRequest) -> None:
    """Check `request.payload` against its action's rules; raises PayloadError."""
    validate_payload(request.action, request.payload)


def validate_payload(action: WriteAction, payload: Mapping[str, Any]) -> None:
    """Check one payload; the PayloadError names the field and says expected vs found."""
    _VALIDATORS[WriteAction(action)](payload)


def is_snowflake_id(value: object) -> bool:
    """True for an X id as the API takes it: a string of 1-19 digits."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _tweet(payload: Mapping[str, Any]) -> None:
    _only(payload, _TWEET_FIELDS, "payload")
    present = [name for name in _EXCLUSIVE if name in payload]
    if len(present) > 1:
        raise PayloadError(
            f"payload.{present[1]}",
            f"expected at most one of {', '.join(_EXCLUSIVE)}, found {' and '.join(present)}",
        )
    has_media = "media" in payload
    if "media" in payload:
        _media(payload["media"])
    if "poll" in payload:
        _poll(payload["poll"])
    if "quote_tweet_id" in payload:
        _id(payload["quote_tweet_id"], "payload.quote_tweet_id")
    if "reply" in payload:
        _reply(payload["reply"])
    if "text" not in payload:
        if not has_media:
            raise PayloadError("payload.text", "required unless media is attached")
        return
    _tweet_text(payload["text"], has_media)


def _tweet_text(text: object, has_media: bool) -> None:
    if not isinstance(text, str):
        raise PayloadError("payload.text", f"expected a string, found {describe(text)}")
    if not text.strip() and not has_media:
        raise PayloadError(
            "payload.text", "expected non-blank text (or attached media), found blank text"
        )
    if len(text) > MAX_TWEET_RAW_CHARS:
        raise PayloadError(
            "payload.text",
            f"expected at most {MAX_TWEET_WEIGHTED_LENGTH} weighted characters, "
            f"found {len(text)} raw characters",
        )
    weighted = tweet_weighted_length(text)
    if weighted > MAX_TWEET_WEIGHTED_LENGTH:
        raise PayloadError(
            "payload.text",
            f"expected at most {MAX_TWEET_WEIGHTED_LENGTH} weighted characters "
            f"(URLs count 23, CJK and emoji 2, after NFC), found {weighted}",
        )
    bad = first_invalid_character(text)
    if bad is not None:
        raise PayloadError(
            "payload.text", f"expected no characters X refuses, found U+{ord(bad):04X}"
        )


def _reply(reply: object) -> None:
    fields = {"in_reply_to_tweet_id", "auto_populate_reply_metadata", "exclude_reply_user_ids"}
    obj = _object(reply, "payload.reply")
    _only(obj, fields, "payload.reply")
    if "in_reply_to_tweet_id" not in obj:
        raise PayloadError("payload.reply.in_reply_to_tweet_id", "required in a reply")
    _id(obj["in_reply_to_tweet_id"], "payload.reply.in_reply_to_tweet_id")
    if "auto_populate_reply_metadata" in obj:
        flag = obj["auto_populate_reply_metadata"]
        if not isinstance(flag, bool):
            raise PayloadError(
                "payload.reply.auto_populate_reply_metadata",
                f"expected true or false, found {describe(flag)}",
            )
    if "exclude_reply_user_ids" in obj:
        _id_list(
            obj["exclude_reply_user_ids"],
            "payload.reply.exclude_reply_user_ids",
            1,
            MAX_EXCLUDED_REPLY_USERS,
        )


def _media(media: object) -> None:
    obj = _object(media, "payload.media")
    _only(obj, {"media_ids", "attachments"}, "payload.media")
    if "media_ids" in obj and "attachments" in obj:
        raise PayloadError(
            "payload.media.attachments", "expected media_ids or attachments, found both"
        )
    if "attachments" in obj:
        parse_attachments(obj["attachments"])
        return
    if "media_ids" not in obj:
        raise PayloadError("payload.media.media_ids", "required when media is given")
    _id_list(obj["media_ids"], "payload.media.media_ids", 1, MAX_MEDIA_IDS)


def _poll(poll: object) -> None:
    obj = _object(poll, "payload.poll")
    _only(obj, {"options", "duration_minutes"}, "payload.poll")
    for name in ("options", "duration_minutes"):
        if name not in obj:
            raise PayloadError(f"payload.poll.{name}", "required in a poll")
    options = obj["options"]
    low, high = POLL_OPTIONS
    if not isinstance(options, list) or not low <= len(options) <= high:
        raise PayloadError(
            "payload.poll.options",
            f"expected a list of {low}-{high} options, found {describe(options)}",
        )
    shortest, longest = POLL_OPTION_CHARS
    for index, option in enumerate(options):
        if not isinstance(option, str) or not shortest <= len(nfc(option)) <= longest:
            raise PayloadError(
                f"payload.poll.options[{index}]",
                f"expected a string of {shortest}-{longest} characters, found {describe(option)}",
            )
    if len({nfc(option) for option in options}) != len(options):
        raise PayloadError("payload.poll.options", "expected distinct options, found duplicates")
    minutes = obj["duration_minutes"]
    low, high = POLL_DURATION_MINUTES
    if type(minutes) is not int or not low <= minutes <= high:
        raise PayloadError(
            "payload.poll.duration_minutes",
            f"expected an integer {low}-{high}, found {describe(minutes)}",
        )


def _dm(payload: Mapping[str, Any]) -> None:
    _only(payload, {"recipient_id", "text"}, "payload")
    for name in ("recipient_id", "text"):
        if name not in payload:
            raise PayloadError(f"payload.{name}", "required in a dm")
    _id(payload["recipient_id"], "payload.recipient_id")
    text = payload["text"]
    if not isinstance(text, str) or not text.strip():
        raise PayloadError("payload.text", f"expected non-blank text, found {describe(text)}")
    if len(text) > MAX_DM_CHARS:
        raise PayloadError(
            "payload.text", f"expected at most {MAX_DM_CHARS} characters, found {len(text)}"
        )


def _delete(payload: Mapping[str, Any]) -> None:
    _only(payload, {"tweet_id"}, "payload")
    if "tweet_id" not in payload:
        raise PayloadError("payload.tweet_id", "required in a delete")
    _id(payload["tweet_id"], "payload.tweet_id")


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(where, f"expected an object, found {describe(value)}")
    return value


def _only(obj: Mapping[str, Any], allowed: Collection[str], where: str) -> None:
    unknown = sorted(str(key) for key in obj if key not in allowed)
    if unknown:
        raise PayloadError(
            f"{where}.{unknown[0]}", f"unknown field; expected one of {', '.join(sorted(allowed))}"
        )


def _id(value: object, where: str) -> None:
    if not is_snowflake_id(value):
        raise PayloadError(where, f"expected an id string of 1-19 digits, found {describe(value)}")


def _id_list(value: object, where: str, low: int, high: int) -> None:
    if not isinstance(value, list) or not low <= len(value) <= high:
        raise PayloadError(where, f"expected a list of {low}-{high} ids, found {describe(value)}")
    for index, item in enumerate(value):
        _id(item, f"{where}[{index}]")
    if len(set(value)) != len(value):
        raise PayloadError(where, "expected distinct ids, found duplicates")


def _thread(payload: Mapping[str, Any]) -> None:
    # Imported here: the thread rules build on this module's tweet rules.
    from twitstack.writes.thread import check_thread

    check_thread(payload)


_VALIDATORS: Mapping[WriteAction, Callable[[Mapping[str, Any]], None]] = {
    WriteAction.TWEET: _tweet,
    WriteAction.DM: _dm,
    WriteAction.DELETE: _delete,
    WriteAction.THREAD: _thread,
}
