"""The writer's dead-letter list: view, retry (back onto write_queue) and discard entries."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from twitstack.writes import keys

_MAX_SHOWN = 500
# Keys under which a dead-letter record may carry the original message, newest format first.
_MESSAGE_KEYS = ("message", "raw", "payload")


@dataclass(frozen=True)
class DeadLetter:
    """One entry: a stable id (hash of its bytes), what went wrong and the original message."""

    id: str
    raw: bytes
    reason: str
    detail: str
    message: str | None
    record: dict[str, Any]


def _parse(raw: bytes) -> DeadLetter:
    entry_id = hashlib.sha256(raw).hexdigest()[:16]
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict):
        text = raw.decode("utf-8", "replace")
        return DeadLetter(entry_id, raw, "unparseable", "", text, {})
    message = next((record[k] for k in _MESSAGE_KEYS if isinstance(record.get(k), str)), None)
    reason = str(record.get("reason_code") or record.get("reason") or "unknown")
    detail = str(record.get("message_text") or record.get("error") or record.get("detail") or "")
    return DeadLetter(entry_id, raw, reason, detail, message, record)


def _value(raw: bytes) -> str:
    # redis-py's annotations say str, but it sends bytes as they are; entries may not be UTF-8.
    return cast(str, raw)


class DeadLetterBox:
    """Reads and edits `keys.DEAD_LETTER` atomically, one entry at a time."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def count(self) -> int:
        return int(await self._redis.llen(keys.DEAD_LETTER))

    async def list(self, limit: int = _MAX_SHOWN) -> list[DeadLetter]:
        items = await self._redis.lrange(keys.DEAD_LETTER, 0, limit - 1)
        return [_parse(i if isinstance(i, bytes) else i.encode("utf-8")) for i in items]

    async def find(self, entry_id: str) -> DeadLetter | None:
        return next((e for e in await self.list() if e.id == entry_id), None)

    async def discard(self, entry: DeadLetter) -> bool:
        """Remove the entry; False if someone else already did."""
        return int(await self._redis.lrem(keys.DEAD_LETTER, 1, _value(entry.raw))) == 1

    async def retry(self, entry: DeadLetter) -> bool:
        """Move the original message back onto write_queue in one MULTI; False if gone."""
        if entry.message is None:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lrem(keys.DEAD_LETTER, 1, _value(entry.raw))
            pipe.rpush(keys.WRITE_QUEUE, entry.message.encode("utf-8"))
            removed, _ = await pipe.execute()
        if int(removed) != 1:
            # Already handled by someone else: undo our push (the message is still queued once).
            await self._redis.rpop(keys.WRITE_QUEUE)
            return False
        return True
