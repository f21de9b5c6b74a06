"""Threads: the `thread` payload (2-25 ordered parts) and the tweet each part becomes on X.

A thread is one request, approved as one unit: its parts live in one payload, so the content
hash (and the approval's signature) covers every part, and an edit of any part is a new
revision that voids the approval. The writer posts part 1, then each next part as a reply to
the one before; `thread_progress` records each part's X id in the ledger before the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from twitstack.writes.errors import PayloadError
from twitstack.writes.models import WriteAction, describe
from twitstack.writes.text import nfc
from twitstack.writes.validation import validate_payload

MIN_THREAD_PARTS = 2
MAX_THREAD_PARTS = 25
# What a part may carry. `reply` is the writer's (each part answers the one before); media
# waits for the media store's upload step to learn threads.
PART_FIELDS = frozenset({"text", "poll", "quote_tweet_id"})
_THREAD_FIELDS = frozenset({"parts", "reply"})


def check_thread(payload: Mapping[str, Any]) -> None:
    """Check a thread payload; the PayloadError names the part (`payload.parts[2].text`)."""
    unknown = sorted(str(key) for key in payload if key not in _THREAD_FIELDS)
    if unknown:
        raise PayloadError(
            f"payload.{unknown[0]}", f"unknown field; expected one of {', '.join(_THREAD_FIELDS)}"
        )
    parts = payload.get("parts")
    if not isinstance(parts, list) or not MIN_THREAD_PARTS <= len(parts) <= MAX_THREAD_PARTS:
        raise PayloadError(
            "payload.parts",
            f"expected a list of {MIN_THREAD_PARTS}-{MAX_THREAD_PARTS} parts, "
            f"found {describe(parts)}",
        )
    for index, part in enumerate(parts):
        where = f"payload.parts[{index}]"
        if not isinstance(part, Mapping):
            raise PayloadError(where, f"expected an object, found {describe(part)}")
        extra = sorted(str(key) for key in part if key not in PART_FIELDS)
        if extra:
            raise PayloadError(
                f"{where}.{extra[0]}",
                f"unknown field in a thread part; expected one of {', '.join(sorted(PART_FIELDS))}",
            )
        if "text" not in part:
            raise PayloadError(f"{where}.text", "required in a thread part")
        try:
            validate_payload(WriteAction.TWEET, part)
        except PayloadError as exc:
            field = (exc.field or "payload").replace("payload", where, 1)
            raise PayloadError(field, _message(exc)) from None
    texts = [nfc(str(part["text"])) for part in parts]
    for index, text in enumerate(texts):
        if text in texts[:index]:
            raise PayloadError(
                f"payload.parts[{index}].text",
                f"expected distinct part texts (X refuses a duplicate post), "
                f"found the text of part {texts.index(text) + 1} again",
            )
    if "reply" in payload:
        # The reply of the first part, checked by the tweet rules.
        try:
            validate_payload(WriteAction.TWEET, {"text": "x", "reply": payload["reply"]})
        except PayloadError as exc:
            raise PayloadError(exc.field or "payload.reply", _message(exc)) from None


def _message(exc: PayloadError) -> str:
    # PayloadError's message starts with its field; keep only what follows.
    prefix = f"{exc.field}: "
    return exc.message[len(prefix) :] if exc.message.startswith(prefix) else exc.message


def thread_parts(payload: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    """The parts of a validated thread payload, in order."""
    parts = payload.get("parts")
    return parts if isinstance(parts, list) else []


def part_payload(payload: Mapping[str, Any], index: int, previous_id: str | None) -> dict[str, Any]:
    """The tweet payload of part `index` (0-based): a reply to `previous_id` after the first.

    The first part answers the thread's own `reply`, if it has one.
    """
    body = dict(thread_parts(payload)[index])
    if index == 0:
        if "reply" in payload:
            body["reply"] = dict(payload["reply"])
    elif previous_id is None:
        raise ValueError(f"part {index + 1} needs the X id of part {index}")
    else:
        body["reply"] = {"in_reply_to_tweet_id": previous_id}
    return body


def part_reply_target(payload: Mapping[str, Any], index: int, posted: Sequence[str]) -> str | None:
    """The id part `index` answers on X: the previous part's, or the thread's reply target."""
    if index > 0:
        return posted[index - 1]
    reply = payload.get("reply")
    target = reply.get("in_reply_to_tweet_id") if isinstance(reply, Mapping) else None
    return target if isinstance(target, str) else None
