"""The strict queue-message decoder: each hazard refused, and a fuzzed only-own-errors property."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twitstack.writes.errors import WireFormatError
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.validation import validate_request
from twitstack.writes.wire import decode_write_request, derived_request_id, encode_write_request

WIRE_REASONS = {
    "too_large", "invalid_utf8", "invalid_unicode", "invalid_json", "duplicate_key",
    "non_finite_number", "too_deep", "not_an_object", "unknown_field", "missing_field",
    "invalid_field", "invalid_payload",
}  # fmt: skip
VALID = WriteRequest(action=WriteAction.TWEET, payload={"text": "hello world"}, id="r1")


def _msg(**fields: Any) -> bytes:
    data = {"action": "tweet", "payload": {"text": "hi"}, **fields}
    return json.dumps(data).encode()


def test_round_trips_the_seed_message() -> None:
    """json.dumps(to_dict()) as the seed pushes it decodes to an equal request."""
    raw = json.dumps(VALID.to_dict()).encode()
    assert decode_write_request(raw) == VALID
    assert decode_write_request(encode_write_request(VALID)) == VALID


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"x" * 70_000, "too_large"),
        (b'{"action":"tweet","payload":{"text":"\xff"}}', "invalid_utf8"),
        (b'{"action":"tweet","payload":{"text":"\\ud800"}}', "invalid_unicode"),
        (b'{"action":"tweet","payload":{"text":"a","text":"b"}}', "duplicate_key"),
        (b'{"action":"tweet","action":"dm","payload":{"text":"a"}}', "duplicate_key"),
        (b'{"action":"tweet","payload":{"text":"a"},"revision":NaN}', "non_finite_number"),
        (b'{"action":"tweet","payload":{"text":"a"},"revision":-Infinity}', "non_finite_number"),
        (b'{"action":"tweet","payload":{"text":"a"},"revision":1e400}', "non_finite_number"),
        (b"[" * 50_000 + b"]" * 50_000, "too_large"),
        (b'{"a":' * 20 + b"1" + b"}" * 20, "too_deep"),
        (b'{"action":"tweet","payload":{"text":"a"}', "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"tweet"', "not_an_object"),
        (b'{"revision":' + b"9" * 5000 + b"}", "invalid_json"),  # past int()'s digit limit
        (_msg(moderation="executed"), "invalid_field"),
        (_msg(extra=1), "unknown_field"),
        (_msg(payload={"text": "a" * 281}), "invalid_payload"),
        (_msg(action="dm"), "invalid_payload"),
    ],
)  # fmt: skip
def test_refuses_with_a_reason_code(raw: bytes, reason: str) -> None:
    """Each thing Python's json would let through (or choke on) has its own reason code."""
    with pytest.raises(WireFormatError) as caught:
        decode_write_request(raw)
    assert caught.value.reason_code == reason


def test_depth_counts_brackets_outside_strings_only() -> None:
    """Brackets inside string values do not count as nesting."""
    raw = _msg(payload={"text": "[[[[[[[[[[{{{{{{{{{{ ok"})
    assert decode_write_request(raw).payload["text"].startswith("[[[")


def test_missing_id_is_derived_from_the_bytes() -> None:
    """The same id-less message decodes to the same id every time (crash re-reads dedupe)."""
    raw = _msg(created_at="2025-07-14T12:00:00Z")
    first, second = decode_write_request(raw), decode_write_request(raw)
    assert first.id == second.id == derived_request_id(raw)
    assert decode_write_request(_msg(created_at="2025-07-14T12:00:01Z")).id != first.id


def test_approved_messages_are_accepted_for_the_writer_to_verify() -> None:
    """An approved message decodes; checking its signature is the writer's job."""
    assert decode_write_request(_msg(moderation="approved")).moderation is ModerationStatus.APPROVED


def _check_decoding(raw: bytes) -> None:
    try:
        request = decode_write_request(raw)
    except WireFormatError as exc:
        reason = exc.reason_code
    else:
        reason = ""
        assert isinstance(request, WriteRequest)
        validate_request(request)
        assert decode_write_request(encode_write_request(request)) == request
    assert reason in WIRE_REASONS or reason == ""


# Inputs decoded: 5,500 byte strings + 1,500 JSON documents + 2,000 messages decoded before
# and after mutation (4,000) = 11,000, in about half a minute.


def _fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=12,
)

_payloads = st.one_of(
    st.fixed_dictionaries({"text": st.text(max_size=300)}),
    st.fixed_dictionaries(
        {"recipient_id": st.from_regex(r"[0-9]{1,20}", fullmatch=True), "text": st.text()}
    ),
    st.fixed_dictionaries({"tweet_id": st.from_regex(r"[0-9]{0,20}", fullmatch=True)}),
    st.dictionaries(st.sampled_from(["text", "media", "poll", "reply", "x"]), _json_values),
)

_messages = st.fixed_dictionaries(
    {
        "action": st.sampled_from(["tweet", "dm", "delete", "nope"]),
        "payload": _payloads,
    },
    optional={
        "id": st.text(max_size=20),
        "account": st.sampled_from(["default", "a b", "brand"]),
        "moderation": st.sampled_from([s.value for s in ModerationStatus]),
        "revision": st.integers(-2, 5) | st.booleans(),
        "created_at": st.sampled_from(["2025-07-14T12:00:00Z", "2025-07-14", "x", 5]),
        "not_before": st.none() | st.just("2025-07-14T12:00:00+02:00"),
        "author": st.none() | st.text(max_size=10),
        "source": st.none() | _json_values,
        "approval": st.none() | _json_values,
        "junk": _json_values,
    },
)


@_fuzz(5500)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_a_request_or_our_error(raw: bytes) -> None:
    """Random bytes never escape as anything but WireFormatError."""
    _check_decoding(raw)


@_fuzz(1500)
@given(_json_values)
def test_arbitrary_json_gives_a_request_or_our_error(value: Any) -> None:
    """Any JSON document (including NaN from floats) only yields a request or our error."""
    _check_decoding(json.dumps(value).encode("utf-8", "surrogatepass"))


@_fuzz(2000)
@given(_messages, st.data())
def test_mutated_messages_give_a_request_or_our_error(message: dict[str, Any], data: Any) -> None:
    """Plausible messages, then byte-level mutations of them, only yield requests or our error."""
    raw = bytearray(json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    _check_decoding(bytes(raw))
    for _ in range(data.draw(st.integers(0, 3))):
        if not raw:
            break
        position = data.draw(st.integers(0, len(raw) - 1))
        kind = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if kind == "flip":
            raw[position] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            raw[position:position] = data.draw(st.sampled_from([b"{", b"[", b'"', b",", b"\\u"]))
        else:
            del raw[position]
    _check_decoding(bytes(raw))
