"""The published schema and the decoder agree on threads, polls and quotes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.writes.test_schema import POLL, SCHEMA_PATH
from twitstack.writes.errors import WireFormatError
from twitstack.writes.wire import decode_write_request


def _thread(*parts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"action": "thread", "payload": {"parts": list(parts), **extra}}


GOOD: list[dict[str, Any]] = [
    _thread({"text": "1/2"}, {"text": "2/2"}),
    _thread({"text": "a", "poll": POLL}, {"text": "b", "quote_tweet_id": "7"},
            reply={"in_reply_to_tweet_id": "5"}),
    _thread(*[{"text": f"part {i}"} for i in range(25)]),
    {"action": "tweet", "payload": {"text": "look", "quote_tweet_id": "123"}},
]  # fmt: skip
BAD: list[dict[str, Any]] = [
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
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("message", GOOD)
def test_schema_and_decoder_accept(
    validator: Draft202012Validator, message: dict[str, Any]
) -> None:
    """Threads (and quotes) the decoder accepts are valid under the schema."""
    decode_write_request(json.dumps(message).encode())
    assert list(validator.iter_errors(message)) == []


@pytest.mark.parametrize("message", BAD)
def test_schema_and_decoder_refuse(
    validator: Draft202012Validator, message: dict[str, Any]
) -> None:
    """What the decoder refuses, the schema refuses too."""
    with pytest.raises(WireFormatError):
        decode_write_request(json.dumps(message).encode())
    assert list(validator.iter_errors(message)) != []
