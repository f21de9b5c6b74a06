"""Opaque pagination tokens and the query parameters X's list endpoints share."""

from __future__ import annotations

import base64
from datetime import datetime

from twitstack.sandbox.xapi.validation import Problem


def next_token(last_id: str) -> str:
    """An opaque token meaning "items older than `last_id`"."""
    return base64.urlsafe_b64encode(f"before:{last_id}".encode()).decode().rstrip("=")


def decode_token(token: str) -> str | None:
    """The id a token continues after, or None if the token is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    prefix, _, last_id = raw.partition(":")
    return last_id if prefix == "before" and last_id.isdigit() else None


def parse_time(value: str) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp (`2026-11-28T12:00:00Z`), None if malformed."""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def parse_max_results(raw: str | None, *, low: int, high: int, default: int) -> int | Problem:
    """`max_results` within X's bounds, or the invalid-request problem for it."""
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        message = f"The `max_results` query parameter value [{raw}] is not between {low} and {high}"
        return ("max_results", raw, message)
    return int(raw)
