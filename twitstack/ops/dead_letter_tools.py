"""Dead letters from the command line: list with short previews, retry and purge, each audited.

An entry is named by the moderation UI's id (the first 16 hex digits of the SHA-256 of the
entry's bytes in `write_queue:dead`), and retry/purge go through the UI's own `DeadLetterBox`
and are written to the same audit log with the same actions, so the CLI and the UI agree.
"""

from __future__ import annotations

import enum
import getpass
import os
from dataclasses import dataclass
from typing import Any

from twitstack.moderation.audit import AuditLog
from twitstack.moderation.dead_letters import DeadLetter, DeadLetterBox, printable

# The audit actions the moderation UI records for the same operations.
RETRY_ACTION = "dead_letter.retry"
PURGE_ACTION = "dead_letter.discard"


class DeadLetterOutcome(enum.StrEnum):
    """What happened to one entry."""

    DONE = "done"
    NOT_FOUND = "not_found"  # no entry with that id
    NOT_RETRYABLE = "not_retryable"  # the original message is not UTF-8 text: purge it instead
    ALREADY_HANDLED = "already_handled"  # someone else retried or purged it meanwhile


@dataclass(frozen=True)
class DeadLetterSummary:
    """What `dlq list` shows of one entry: never the full message."""

    id: str
    reason: str
    detail: str
    time: str | None
    consumer: str | None
    preview: str
    retryable: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict of the summary."""
        return {
            "id": self.id,
            "reason": self.reason,
            "detail": self.detail,
            "time": self.time,
            "consumer": self.consumer,
            "preview": self.preview,
            "retryable": self.retryable,
        }


def cli_actor() -> str:
    """The audit actor for this process: `cli:<unix user>`."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        # No login name in the environment and no passwd entry (a bare container): use the uid.
        user = f"uid{os.getuid()}"
    return f"cli:{user}"


def summarize(entry: DeadLetter) -> DeadLetterSummary:
    """The listing view of one entry."""
    record = entry.record
    return DeadLetterSummary(
        id=entry.id,
        reason=entry.reason,
        detail=entry.short_detail,
        time=_text_or_none(record.get("time")),
        consumer=_text_or_none(record.get("consumer")),
        preview=entry.preview,
        retryable=entry.message is not None,
    )


async def list_dead_letters(box: DeadLetterBox, limit: int) -> tuple[int, list[DeadLetterSummary]]:
    """The total count and the first `limit` entries (oldest first)."""
    if limit < 1:
        raise ValueError(f"expected a limit of at least 1, found {limit}")
    total = await box.count()
    return total, [summarize(entry) for entry in await box.list(limit)]


class DeadLetterTools:
    """List, retry and purge dead letters, auditing every change as `actor`."""

    def __init__(self, box: DeadLetterBox, audit: AuditLog, *, actor: str) -> None:
        self._box = box
        self._audit = audit
        self.actor = actor

    async def entries(self) -> list[DeadLetter]:
        """Every entry, as a snapshot (the list may change while an operator works on it)."""
        return await self._box.list(max(await self._box.count(), 1))

    async def find(self, entry_id: str) -> DeadLetter | None:
        """The entry with this id, searching the whole list (in bounded chunks)."""
        return await self._box.find(entry_id)

    async def retry(self, entry: DeadLetter) -> DeadLetterOutcome:
        """Put the original message back on write_queue and drop the entry, atomically."""
        if entry.message is None:
            return DeadLetterOutcome.NOT_RETRYABLE
        if not await self._box.retry(entry):
            return DeadLetterOutcome.ALREADY_HANDLED
        await self._record(RETRY_ACTION, entry)
        return DeadLetterOutcome.DONE

    async def purge(self, entry: DeadLetter) -> DeadLetterOutcome:
        """Remove the entry for good."""
        if not await self._box.discard(entry):
            return DeadLetterOutcome.ALREADY_HANDLED
        await self._record(PURGE_ACTION, entry)
        return DeadLetterOutcome.DONE

    async def _record(self, action: str, entry: DeadLetter) -> None:
        # The same row the UI writes (target = entry id, detail = reason); the actor says cli.
        await self._audit.record(self.actor, action, entry.id, {"reason": entry.reason})


def _text_or_none(value: object) -> str | None:
    return None if value is None else printable(value)
