"""Signatures of webhook deliveries: HMAC-SHA256 over the timestamp and the body.

The header is `X-Twitstack-Signature: t=<unix seconds>,v1=<hex digest>`, the digest being
HMAC-SHA256(key, "<t>." + body). The timestamp is the attempt's own (a retry is signed
afresh), so a receiver rejects any delivery whose `t` is more than a few minutes from its
clock: a captured delivery cannot be replayed later, and within the window the delivery id
(`X-Twitstack-Delivery`) tells a replay (or an at-least-once repeat) from a new one.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Twitstack-Signature"
DELIVERY_HEADER = "X-Twitstack-Delivery"
EVENT_HEADER = "X-Twitstack-Event"
DEFAULT_TOLERANCE_S = 300


def signature(key: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under `key`."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(key.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(key: str, timestamp: int, body: bytes) -> str:
    """The value of `X-Twitstack-Signature` for one delivery attempt."""
    return f"t={timestamp},v1={signature(key, timestamp, body)}"


def verify(
    key: str, header: str, body: bytes, *, now: float, tolerance_s: float = DEFAULT_TOLERANCE_S
) -> bool:
    """True if `header` signs `body` under `key` with a timestamp within `tolerance_s` of now."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(key, timestamp, body)
    return hmac.compare_digest(expected, parts.get("v1", ""))
