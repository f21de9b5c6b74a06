"""docs/write-request.schema.json agrees with the decoder on what a valid message is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from twitstack.writes.errors import WireFormatError
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.wire import decode_write_request

POLL = {"options": ["a", "b"], "duration_minutes": 60}
PNG = {"sha256": "a" * 64, "type": "image/png", "size": 100, "alt_text": "a cat"}
MP4 = {"sha256": "b" * 64, "type": "video/mp4", "size": 1000}
SCHEMA_PATH = Path(__file__).parents[2] / "docs" / "write-request.schema.json"
GOOD: list[dict[str, Any]] = [
    dict(WriteRequest(action=WriteAction.TWEET, payload={"text": "hello world"}).to_dict()),
    {"action": "tweet", "payload": {"text": "hi", "reply": {"in_reply_to_tweet_id": "1"}}},
    {"action": "tweet", "payload": {"media": {"media_ids": ["1", "2"]}}},
    {"action": "tweet", "payload": {"text": "q", "poll": POLL}},
    {"action": "tweet", "payload": {"text": "v", "media": {"attachments": [MP4]}}},
    {"action": "tweet", "payload": {"media": {"attachments": [PNG, {**PNG, "sha256": "c" * 64}]}}},
    {"action": "dm", "payload": {"recipient_id": "42", "text": "hi"}, "account": "brand"},
    {"action": "delete", "payload": {"tweet_id": "9"}, "not_before": "2025-07-14T12:00:00+02:00"},
    {"action": "tweet", "payload": {"text": "x"}, "source": {"id": "1", "counts": {"likes": 3}}},
]  # fmt: skip
BAD: list[dict[str, Any]] = [
    {"action": "retweet", "payload": {"tweet_id": "1"}},
    {"action": "tweet", "payload": {"text": "a"}, "extra": True},
    {"action": "tweet", "payload": {}},
    {"action": "tweet", "payload": {"text": "a", "quote_tweet_id": "1", "poll": POLL}},
    {"action": "tweet", "payload": {"media": {"media_ids": ["1", "2", "3", "4", "5"]}}},
    {"action": "tweet", "payload": {"media": {"attachments": [{**PNG, "size": 6 * 2**20}]}}},
    {"action": "tweet", "payload": {"media": {"attachments": [{**PNG, "sha256": "A" * 64}]}}},
    {"action": "tweet", "payload": {"media": {"attachments": [{**PNG, "type": "image/bmp"}]}}},
    {"action": "tweet", "payload": {"media": {"attachments": [{**PNG, "alt_text": "x" * 1001}]}}},
    {"action": "tweet", "payload": {"media": {"attachments": [{**PNG, "name": "../a"}]}}},
    {"action": "tweet", "payload": {"media": {"attachments": [PNG], "media_ids": ["1"]}}},
    {"action": "dm", "payload": {"recipient_id": "abc", "text": "hi"}},
    {"action": "dm", "payload": {"recipient_id": "1", "text": "x" * 10_001}},
    {"action": "delete", "payload": {"tweet_id": 5}},
    {"action": "delete", "payload": {"tweet_id": "5"}, "moderation": "executed"},
    {"action": "delete", "payload": {"tweet_id": "5"}, "revision": 0},
    {"action": "delete", "payload": {"tweet_id": "5"}, "created_at": "2025-07-14T12:00:00"},
    {"action": "delete", "payload": {"tweet_id": "5"}, "id": "white space"},
]  # fmt: skip


# Threads, polls and quotes (the thread action's parts, a quote by id).
def _thread(*parts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"action": "thread", "payload": {"parts": list(parts), **extra}}


THREAD_GOOD: list[dict[str, Any]] = [
    _thread({"text": "1/2"}, {"text": "2/2"}),
    _thread({"text": "a", "poll": POLL}, {"text": "b", "quote_tweet_id": "7"},
            reply={"in_reply_to_tweet_id": "5"}),
    _thread(*[{"text": f"part {i}"} for i in range(25)]),
    {"action": "tweet", "payload": {"text": "look", "quote_tweet_id": "123"}},
]  # fmt: skip
THREAD_BAD: list[dict[str, Any]] = [
    _thread({"text": "only one"}),
    _thread(*[{"text": f"part {i}"} for i in range(26)]),
    _thread({"text": "a"}, {"text": ""}),
    _thread({"text": "a"}, {"poll": POLL}),
    _thread({"text": "a"}, {"text": "b", "reply": {"in_reply_to_tweet_id": "1"}}),
    _thread({"text": "a"}, {"text": "b", "media": {"media_ids": ["1"]}}),
    _thread({"text": "a", "poll": POLL, "quote_tweet_id": "1"}, {"text": "b"}),
    _thread({"text": "a"}, {"text": "b"}, extra=1),
    {"action": "thread", "payload": {"text": "not a thread"}},
    {"action": "tweet", "payload": {"text": "t", "poll": {**POLL, "options": list("abcde")}}},
    {"action": "tweet", "payload": {"text": "t", "quote_tweet_id": "https://x.com/u/status/1"}},
]


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    """The published schema, itself checked against the 2020-12 metaschema."""
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("message", GOOD + THREAD_GOOD)
def test_schema_and_decoder_accept(
    validator: Draft202012Validator, message: dict[str, Any]
) -> None:
    """Messages the decoder accepts are valid under the schema."""
    decode_write_request(json.dumps(message).encode())
    assert list(validator.iter_errors(message)) == []


@pytest.mark.parametrize("message", BAD + THREAD_BAD)
def test_schema_and_decoder_refuse(
    validator: Draft202012Validator, message: dict[str, Any]
) -> None:
    """Messages the decoder refuses are invalid under the schema too."""
    with pytest.raises(WireFormatError):
        decode_write_request(json.dumps(message).encode())
    assert list(validator.iter_errors(message)) != []
