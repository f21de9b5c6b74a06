"""Payload rules per action: each rule accepts the edge and refuses one past it."""

from __future__ import annotations

from typing import Any

import pytest

from twitstack.writes.errors import PayloadError
from twitstack.writes.models import WriteAction
from twitstack.writes.validation import validate_payload

T, D, X = WriteAction.TWEET, WriteAction.DM, WriteAction.DELETE
OPTIONS, MINUTES = "payload.poll.options", "payload.poll.duration_minutes"


def poll(options: list[Any], minutes: Any = 5) -> dict[str, Any]:
    """A tweet payload with a poll."""
    return {"text": "p", "poll": {"options": options, "duration_minutes": minutes}}


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        (T, {"text": "a" * 280}),
        (T, {"text": "日" * 140}),
        (T, {"text": "see https://example.com/" + "x" * 300}),
        (T, {"text": "e\u0301" * 280}),  # NFD: 560 code points, 280 after NFC
        (T, {"media": {"media_ids": ["1", "2", "3", "4"]}}),
        (T, {"text": "", "media": {"media_ids": ["1"]}}),
        (T, {"text": "q", "quote_tweet_id": "1234567890123456789"}),
        (T, {"text": "r", "reply": {"in_reply_to_tweet_id": "5", "exclude_reply_user_ids": ["6"]}}),
        (T, poll(["a", "b" * 25])),
        (T, poll(["a", "b", "c", "d"], 10080)),
        (D, {"recipient_id": "42", "text": "x" * 10_000}),
        (X, {"tweet_id": "1"}),
    ],
)
def test_accepts_valid_payloads(action: WriteAction, payload: dict[str, Any]) -> None:
    """Payloads at the documented limits pass."""
    validate_payload(action, payload)


@pytest.mark.parametrize(
    ("action", "payload", "field", "says"),
    [
        (T, {"text": "a" * 281}, "payload.text", "found 281"),
        (T, {"text": "日" * 141}, "payload.text", "found 282"),
        (T, {"text": "👍" * 141}, "payload.text", "found 282"),
        (T, {}, "payload.text", "required"),
        (T, {"text": "   "}, "payload.text", "blank"),
        (T, {"text": 5}, "payload.text", "number 5"),
        (T, {"text": "a\ufeffb"}, "payload.text", "U+FEFF"),
        (T, {"text": "a", "colour": "red"}, "payload.colour", "unknown field"),
        (T, {"text": "a", "media": {"media_ids": []}}, "payload.media.media_ids", "1-4"),
        (T, {"media": {"media_ids": ["1"] * 5}}, "payload.media.media_ids", "1-4"),
        (T, {"media": {"media_ids": ["1", "1"]}}, "payload.media.media_ids", "distinct"),
        (T, {"media": {"media_ids": [1]}}, "payload.media.media_ids[0]", "digits"),
        (T, {"media": {"media_ids": ["1"], "tagged": []}}, "payload.media.tagged", "unknown"),
        (T, {"text": "a", "quote_tweet_id": "12a"}, "payload.quote_tweet_id", "digits"),
        (T, {"text": "a", "quote_tweet_id": "1" * 20}, "payload.quote_tweet_id", "1-19"),
        (T, {"text": "a", "reply": {}}, "payload.reply.in_reply_to_tweet_id", "required"),
        (T, {"text": "a", "reply": "5"}, "payload.reply", "object"),
        (
            T,
            {"text": "a", "quote_tweet_id": "1", "media": {"media_ids": ["2"]}},
            "payload.quote_tweet_id",
            "at most one",
        ),
        (
            T,
            {"text": "a", "poll": {"options": ["x", "y"], "duration_minutes": 5},
             "media": {"media_ids": ["2"]}},
            "payload.poll",
            "at most one",
        ),
        (T, poll(["x"]), OPTIONS, "2-4"),
        (T, poll(["a", "b", "c", "d", "e"]), OPTIONS, "2-4"),
        (T, poll(["x", "y" * 26]), f"{OPTIONS}[1]", "1-25"),
        (T, poll(["x", ""]), f"{OPTIONS}[1]", "1-25"),
        (T, poll(["x", "x"]), OPTIONS, "distinct"),
        (T, poll(["x", "y"], 4), MINUTES, "5-10080"),
        (T, poll(["x", "y"], 10081), MINUTES, "5-10080"),
        (T, poll(["x", "y"], 5.0), MINUTES, "integer"),
        (D, {"recipient_id": "42", "text": "x" * 10_001}, "payload.text", "found 10001"),
        (D, {"recipient_id": "42", "text": ""}, "payload.text", "non-blank"),
        (D, {"recipient_id": "bob", "text": "hi"}, "payload.recipient_id", "digits"),
        (D, {"text": "hi"}, "payload.recipient_id", "required"),
        (D, {"recipient_id": "1", "text": "hi", "media": 1}, "payload.media", "unknown"),
        (X, {}, "payload.tweet_id", "required"),
        (X, {"tweet_id": 123}, "payload.tweet_id", "digits"),
        (X, {"tweet_id": "1", "text": "x"}, "payload.text", "unknown"),
    ],
)  # fmt: skip
def test_refuses_and_explains(
    action: WriteAction, payload: dict[str, Any], field: str, says: str
) -> None:
    """Each broken rule names its field and says what was expected and found."""
    with pytest.raises(PayloadError) as caught:
        validate_payload(action, payload)
    assert caught.value.field == field
    assert caught.value.reason_code == "invalid_payload"
    assert says in str(caught.value)
