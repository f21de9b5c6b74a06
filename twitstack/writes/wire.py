"""The queue message format: strict bytes -> WriteRequest decoding and canonical encoding.

Python's `json` silently accepts duplicate keys (last wins), NaN/Infinity, numbers that overflow
to infinity and lone surrogates, and recurses without limit; a producer's mistake or an attacker's
message must not slip through any of those, so each is rejected with a WireFormatError.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Collection, Mapping
from typing import Any

from twitstack.writes.errors import WireFormatError
from twitstack.writes.models import ModerationStatus, WriteRequest
from twitstack.writes.validation import validate_request

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
DEFAULT_MAX_DEPTH = 8
# A queue message asks for work; later states are the ledger's business, never a producer's.
QUEUE_STATES: frozenset[ModerationStatus] = frozenset(
    {ModerationStatus.PENDING, ModerationStatus.APPROVED}
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def decode_write_request(
    raw: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    allowed_states: Collection[ModerationStatus] = QUEUE_STATES,
) -> WriteRequest:
    """Decode one `write_queue` message; raises WireFormatError (or its PayloadError).

    A message without an `id` gets one derived from its bytes ("h" + 31 hex digits of SHA-256),
    so reading the same message twice (e.g. after a crash) yields the same request id.
    """
    data = parse_json_strictly(raw, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(data, dict):
        raise WireFormatError("not_an_object", f"expected a JSON object, found {_kind(data)}")
    default_id = None if "id" in data else derived_request_id(raw)
    request = WriteRequest.from_dict(data, default_id=default_id)
    if request.moderation not in allowed_states:
        allowed = ", ".join(sorted(state.value for state in allowed_states))
        raise WireFormatError(
            "invalid_field",
            f"moderation: expected one of {allowed} in a queue message, "
            f"found {request.moderation.value!r}",
            field="moderation",
        )
    validate_request(request)
    return request


def encode_write_request(request: WriteRequest) -> bytes:
    """The message bytes for `request`: compact JSON of `to_dict()`, UTF-8."""
    return json.dumps(
        request.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def derived_request_id(raw: bytes) -> str:
    """The stable id given to a message that carries none."""
    return "h" + hashlib.sha256(raw).hexdigest()[:31]


def parse_json_strictly(
    raw: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> Any:
    """Parse JSON bytes, refusing what `json.loads` would let through or choke on."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise WireFormatError("invalid_json", f"expected bytes, found {type(raw).__name__}")
    if len(raw) > max_bytes:
        raise WireFormatError(
            "too_large", f"expected at most {max_bytes} bytes, found {len(raw)} bytes"
        )
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireFormatError(
            "invalid_utf8", f"expected UTF-8, found an invalid byte at offset {exc.start}"
        ) from None
    # Nesting never exceeds the number of openers: most messages need no scan at all.
    openers = text.count("{") + text.count("[")
    depth = _nesting_depth(text) if openers > max_depth else openers
    if depth > max_depth:
        raise WireFormatError(
            "too_deep", f"expected nesting of at most {max_depth} levels, found {depth}"
        )
    try:
        data = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except WireFormatError:
        raise
    except (ValueError, RecursionError) as exc:
        # JSONDecodeError is a ValueError; so is the int-digits limit of int().
        raise WireFormatError("invalid_json", f"expected valid JSON, found: {exc}") from None
    # A lone surrogate can only come from a \\u escape: text decoded from UTF-8 holds none.
    if "\\u" in text:
        _check_strings(data, max_depth + 1)
    return data


def _nesting_depth(text: str) -> int:
    """Deepest bracket nesting outside string literals, found without recursion."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub('""', text)):
        depth += 1 if match.group(0) in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise WireFormatError(
                "duplicate_key", f"expected unique keys in each object, found {key[:64]!r} twice"
            )
        seen.add(key)
    raise AssertionError("a dict shorter than its pairs has a repeated key")


def _refuse_constant(name: str) -> Any:
    raise WireFormatError(
        "non_finite_number", f"expected finite numbers, found {name} (not valid JSON)"
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise WireFormatError(
            "non_finite_number", f"expected a finite number, found {text[:40]} (overflows)"
        )
    return value


def _check_strings(value: Any, budget: int) -> None:
    """Refuse lone surrogates (from \\ud800-style escapes): they cannot be encoded as UTF-8."""
    if budget <= 0:
        raise WireFormatError("too_deep", "expected shallower nesting")
    if isinstance(value, str):
        _encodable(value)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, budget - 1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _encodable(key)
            _check_strings(item, budget - 1)


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise WireFormatError(
            "invalid_unicode",
            f"expected Unicode text, found a lone surrogate U+{ord(text[exc.start]):04X}",
        ) from None


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
