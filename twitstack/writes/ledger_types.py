"""Values the ledger returns: a stored record, and the results of recording and transitions."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from twitstack.writes.errors import UnreadableError, WireFormatError
from twitstack.writes.models import ModerationStatus, WriteRequest


def epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch: the scores of every time-ordered sorted set."""
    return int(value.timestamp() * 1000)


def from_epoch_ms(value: float) -> datetime:
    """Inverse of epoch_ms, as an aware UTC datetime."""
    return datetime.fromtimestamp(value / 1000, UTC)


class TransitionStatus(enum.StrEnum):
    """How a compare-and-set transition ended."""

    OK = "ok"
    NOT_FOUND = "not_found"  # no such request (never recorded, or past retention)
    STATE_MISMATCH = "state_mismatch"  # someone else moved it first
    REVISION_MISMATCH = "revision_mismatch"  # it was edited since the caller read it
    CONTENT_MISMATCH = "content_mismatch"  # its stored request changed since the caller read it
    SPENT = "spent"  # into sending with an approval already spent by another send, or revoked
    TOMBSTONED = "tombstoned"  # into sending for an id that already reached a final state
    ATTEMPT_MISMATCH = "attempt_mismatch"  # a later attempt began since the caller read it


@dataclass(frozen=True, slots=True)
class TransitionResult:
    """The outcome of one transition; `found_state` is what Redis held when it ran."""

    status: TransitionStatus
    request_id: str
    found_state: ModerationStatus | None
    to_state: ModerationStatus
    revision: int
    attempt: int

    @property
    def ok(self) -> bool:
        """True if this call made the change."""
        return self.status is TransitionStatus.OK

    @classmethod
    def missing(cls, request_id: str, to_state: ModerationStatus) -> TransitionResult:
        """The result for a request the ledger does not hold."""
        return cls(TransitionStatus.NOT_FOUND, request_id, None, to_state, 0, 0)


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The outcome of `RequestLedger.record`: whether this call created it, and its state now."""

    request_id: str
    created: bool
    state: ModerationStatus
    revision: int
    scheduled: bool  # approved but not yet due: it waits in the schedule


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """A request as the ledger holds it: `request.moderation` is the current state."""

    request: WriteRequest
    attempt: int
    sending_started_at: datetime | None
    updated_at: datetime
    last_actor: str
    last_reason: str
    result: Mapping[str, Any] | None

    @property
    def state(self) -> ModerationStatus:
        """The current state."""
        return self.request.moderation

    def is_expired(self, now: datetime) -> bool:
        """True if the request has an `expires_at` that `now` has passed."""
        expires = self.request.expires_at
        return expires is not None and now >= expires


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record together with the exact `request` bytes it was parsed from (for a byte CAS)."""

    record: LedgerRecord
    raw_request: bytes


def as_text(value: bytes | str) -> str:
    """A Redis reply as text, whether the client decodes responses or not."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def parse_record(
    fields: Mapping[bytes | str, bytes | str], *, request_id: str = ""
) -> LedgerRecord:
    """A LedgerRecord from the HGETALL of a request hash.

    The ledger wrote it, but anyone with Redis access can too: whatever cannot be read raises
    UnreadableError (never a bare KeyError or ValueError), so readers can quarantine it.
    """
    try:
        return _parse_record(fields)
    except WireFormatError as exc:
        raise UnreadableError("record", request_id, exc.reason_code, exc.message) from None
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        detail = f"{type(exc).__name__}: {exc}"[:300]
        raise UnreadableError("record", request_id, "malformed_record", detail) from None


def _parse_record(fields: Mapping[bytes | str, bytes | str]) -> LedgerRecord:
    text = {as_text(key): as_text(value) for key, value in fields.items()}
    data = json.loads(text["request"])
    if not isinstance(data, dict):
        raise ValueError("request: expected a JSON object")
    request = WriteRequest.from_dict(data)
    request = replace(
        request, moderation=ModerationStatus(text["state"]), revision=int(text["revision"])
    )
    started = text.get("sending_started_at")
    result = text.get("result")
    return LedgerRecord(
        request=request,
        attempt=int(text.get("attempt", "0")),
        sending_started_at=datetime.fromisoformat(started) if started else None,
        updated_at=datetime.fromisoformat(text["updated_at"]),
        last_actor=text.get("last_actor", ""),
        last_reason=text.get("last_reason", ""),
        result=json.loads(result) if result else None,
    )


@dataclass(frozen=True, slots=True)
class RecordPage:
    """One page of records in display order, with cursors to the neighbouring pages."""

    records: list[LedgerRecord]
    next_cursor: str | None
    prev_cursor: str | None
