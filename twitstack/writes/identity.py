"""Which request a queue message names, read best-effort for log lines about bad messages."""

from __future__ import annotations

import json
from typing import Any

_FIELDS = ("id", "account", "action")
_MAX_CHARS = 128  # a hostile message must not put a megabyte into a log line


def message_identity(raw: bytes) -> dict[str, str]:
    """`request_id`, `account` and `action` of a message, for whichever of them it carries.

    Used when the message failed validation: the values are untrusted and only ever logged
    (shortened), so an operator can still match the dead letter to its producer's request.
    """
    try:
        data: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    found: dict[str, str] = {}
    for field in _FIELDS:
        value = data.get(field)
        if isinstance(value, str) and value:
            found["request_id" if field == "id" else field] = value[:_MAX_CHARS]
    return found
