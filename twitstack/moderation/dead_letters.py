"""The writer's dead-letter list: view, retry (back onto write_queue) and discard entries."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from twitstack.writes import keys

_MAX_SHOWN = 500
# find() reads the list this many entries per LRANGE, and gives up after this many chunks
# (50 million entries): bounded work per call whatever the list's length.
FIND_CHUNK = 500
_MAX_FIND_CHUNKS = 100_000
# Keys under which a dead-letter record may carry the original message, newest format first.
_MESSAGE_KEYS = ("message", "raw", "payload")
PREVIEW_CHARS = 40
DM_PREVIEW_CHARS = 20  # DMs are private: show barely enough to recognise one
DETAIL_CHARS = 200

# Remove the entry and requeue its message in one step, or do nothing if the entry is gone:
# a check-then-undo in two round trips could pop another producer's message instead of ours.
_RETRY = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class DeadLetter:
    """One entry: a stable id (hash of its bytes), what went wrong and the original message."""

    id: str
    raw: bytes
    reason: str
    detail: str
    message: str | None
    record: dict[str, Any]

    @property
    def preview(self) -> str:
        """A short, recognisable preview of the message (DM text cut shortest)."""
        return preview(self.message)

    @property
    def short_detail(self) -> str:
        return clip(self.detail, DETAIL_CHARS)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def preview(message: str | None) -> str:
    """What a list shows of a queue message: never a whole DM, never a whole tweet."""
    if message is None:
        return "(not UTF-8 text)"
    try:
        data = json.loads(message)
    except ValueError:
        return clip(message, PREVIEW_CHARS)
    if not isinstance(data, Mapping):
        return clip(message, PREVIEW_CHARS)
    payload = data.get("payload")
    payload = payload if isinstance(payload, Mapping) else {}
    action = data.get("action")
    if action == "tweet":
        return f"tweet {clip(str(payload.get('text', '')), PREVIEW_CHARS)!r}"
    if action == "dm":
        text = clip(str(payload.get("text", "")), DM_PREVIEW_CHARS)
        return f"dm to {clip(str(payload.get('recipient_id', '?')), 19)} {text!r}"
    if action == "delete":
        return f"delete {clip(str(payload.get('tweet_id', '?')), 19)}"
    parts = payload.get("parts")
    if action == "thread" and isinstance(parts, list):
        first = parts[0] if parts and isinstance(parts[0], Mapping) else {}
        text = clip(str(first.get("text", "")), PREVIEW_CHARS)
        return f"thread of {len(parts)} parts, 1: {text!r}"
    return clip(message, PREVIEW_CHARS)


def entry_id(raw: bytes) -> str:
    """The id the UI and the CLI name an entry by: 16 hex digits of the SHA-256 of its bytes."""
    return hashlib.sha256(raw).hexdigest()[:16]


def _parse(raw: bytes) -> DeadLetter:
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict):
        text = raw.decode("utf-8", "replace")
        return DeadLetter(entry_id(raw), raw, "unparseable", "", text, {})
    message = next((record[k] for k in _MESSAGE_KEYS if isinstance(record.get(k), str)), None)
    if message is not None and not _is_utf8(message):
        # A JSON escape like \ud800 decodes to a lone surrogate: no bytes to requeue or print.
        message = None
    # The pages show fields of the record (time, consumer): no lone surrogates there either.
    record = json.loads(printable(json.dumps(record, ensure_ascii=False)))
    reason = str(record.get("reason_code") or record.get("reason") or "unknown")
    detail = printable(
        record.get("message_text") or record.get("error") or record.get("detail") or ""
    )
    return DeadLetter(entry_id(raw), raw, reason, detail, message, record)


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(value: object) -> str:
    """`value` as printable text: lone surrogates (from JSON escapes) become U+FFFD."""
    return str(value).encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _as_bytes(item: bytes | str) -> bytes:
    return item if isinstance(item, bytes) else item.encode("utf-8")


def _value(raw: bytes) -> str:
    # redis-py's annotations say str, but it sends bytes as they are; entries may not be UTF-8.
    return cast(str, raw)


class DeadLetterBox:
    """Reads and edits `keys.DEAD_LETTER` atomically, one entry at a time."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._retry = redis.register_script(_RETRY)

    async def count(self) -> int:
        return int(await self._redis.llen(keys.DEAD_LETTER))

    async def list(self, limit: int = _MAX_SHOWN) -> list[DeadLetter]:
        items = await self._redis.lrange(keys.DEAD_LETTER, 0, limit - 1)
        return [_parse(_as_bytes(i)) for i in items]

    async def find(self, wanted: str) -> DeadLetter | None:
        """The entry with id `wanted`, wherever it sits in the list; None if there is none.

        Reads FIND_CHUNK entries per round trip and parses only the match. Entries removed
        meanwhile shift later ones forward, so a concurrent retry/discard can make one pass
        miss an entry; the caller then reports "already handled" and the user reloads.
        """
        for chunk in range(_MAX_FIND_CHUNKS):
            start = chunk * FIND_CHUNK
            items = await self._redis.lrange(keys.DEAD_LETTER, start, start + FIND_CHUNK - 1)
            for item in items:
                raw = _as_bytes(item)
                if entry_id(raw) == wanted:
                    return _parse(raw)
            if len(items) < FIND_CHUNK:
                return None
        return None

    async def discard(self, entry: DeadLetter) -> bool:
        """Remove the entry (one LREM, atomic on its own); False if someone else already did."""
        return int(await self._redis.lrem(keys.DEAD_LETTER, 1, _value(entry.raw))) == 1

    async def retry(self, entry: DeadLetter) -> bool:
        """Move the original message back onto write_queue atomically; False if gone."""
        if entry.message is None:
            return False
        done = await self._retry(
            keys=[keys.DEAD_LETTER, keys.WRITE_QUEUE],
            args=[_value(entry.raw), entry.message.encode("utf-8")],
        )
        return int(done) == 1
