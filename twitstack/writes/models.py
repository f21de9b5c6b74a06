"""The write request: actions, moderation states, the approval record and the request itself."""

from __future__ import annotations

import enum
import hashlib
import json
import re
import uuid
from collections.abc import Collection, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from twitstack.writes.describe import describe as describe  # re-exported (validation uses it)
from twitstack.writes.errors import WireFormatError

_describe = describe
DEFAULT_ACCOUNT = "default"
_E = TypeVar("_E", bound=enum.StrEnum)
ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
ACCOUNT_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_AUTHOR_CHARS = 256
# Highest revision a request may carry: every door checks it, and an edit past it is refused.
MAX_REVISION = 1_000_000
# Keys a `source` record (the scraped tweet a draft answers) may carry, with their JSON types.
SOURCE_FIELDS: Mapping[str, type | tuple[type, ...]] = {
    "id": str,
    "author": str,
    "author_id": str,
    "text": str,
    "url": str,
    "lang": str,
    "counts": dict,
    "created_at": str,
    "scraped_at": str,
    "job": str,
    # Why X would refuse the draft (e.g. a reply to an author who never mentioned the account).
    "refusal": str,
}
MAX_SOURCE_STRING_CHARS = 20_000


class WriteAction(enum.StrEnum):
    """What a request asks X to do."""

    TWEET = "tweet"
    DM = "dm"
    DELETE = "delete"
    THREAD = "thread"  # 2-25 tweets, each a reply to the one before (writes/thread.py)


class ModerationStatus(enum.StrEnum):
    """Where a request stands; the allowed moves between them live in `ledger_states`."""

    PENDING = "pending"  # waiting for a moderator
    APPROVED = "approved"  # signed by a moderator, waiting for the writer
    REJECTED = "rejected"  # a moderator said no (terminal)
    EXECUTED = "executed"  # X has it; `result` carries its id (terminal)
    FAILED = "failed"  # X refused it for good (terminal)
    SENDING = "sending"  # committed before the first byte goes to X
    UNKNOWN = "unknown"  # the attempt's outcome is ambiguous; reconcile before re-sending
    EXPIRED = "expired"  # `expires_at` passed before it was executed (terminal)
    NEEDS_REVIEW = "needs_review"  # a human must decide (bad signature, unreadable DM, ...)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def format_time(value: datetime) -> str:
    """ISO-8601 in UTC with microseconds and a `Z`: the one textual form on the wire."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; give a timezone")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object, field_name: str) -> datetime:
    """Parse an RFC 3339 timestamp with an explicit offset into an aware UTC datetime."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        raise WireFormatError(
            "invalid_field",
            f"{field_name}: expected an RFC 3339 date-time string, found {_describe(value)}",
            field=field_name,
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or "T" not in value.upper():
        raise WireFormatError(
            "invalid_field",
            f"{field_name}: expected a date-time with a UTC offset like "
            f"2025-07-14T12:00:00Z, found {value!r}",
            field=field_name,
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-14:00 parses, but its UTC form is past the calendar's end.
        raise WireFormatError(
            "invalid_field",
            f"{field_name}: expected a date-time within years 1-9999 in UTC, found {value!r}",
            field=field_name,
        ) from None


def new_request_id() -> str:
    """A fresh request id (32 hex characters)."""
    return uuid.uuid4().hex


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces, UTF-8) for hashing and signing."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


NONCE_PATTERN = re.compile(r"[0-9a-f]{16,64}")


@dataclass(frozen=True, slots=True)
class Approval:
    """A moderator's signed approval of one revision of a request (see `signing`).

    `nonce` makes each approval spendable once (the ledger records it when sending starts).
    An approval without one is in the old v1 format, which writers no longer believe.
    """

    key_id: str
    approver: str
    approved_at: datetime
    signature: str  # base64url of the Ed25519 signature, unpadded
    nonce: str | None = None

    def to_dict(self) -> dict[str, str]:
        """JSON-safe form, as carried in a request's `approval` field."""
        data = {
            "key_id": self.key_id,
            "approver": self.approver,
            "approved_at": format_time(self.approved_at),
            "signature": self.signature,
        }
        if self.nonce is not None:
            data["nonce"] = self.nonce
        return data

    @classmethod
    def from_dict(cls, data: object) -> Approval:
        """Inverse of to_dict; raises WireFormatError naming the bad field."""
        if not isinstance(data, Mapping):
            raise WireFormatError(
                "invalid_field",
                f"approval: expected an object, found {_describe(data)}",
                field="approval",
            )
        expected = {"key_id", "approver", "approved_at", "signature", "nonce"}
        _reject_unknown(data, expected, "approval")
        values: dict[str, str] = {}
        for name in ("key_id", "approver", "signature"):
            item = data.get(name)
            if not isinstance(item, str) or not 1 <= len(item) <= 512:
                raise WireFormatError(
                    "invalid_field" if name in data else "missing_field",
                    f"approval.{name}: expected a string of 1-512 characters, "
                    f"found {_describe(item)}",
                    field=f"approval.{name}",
                )
            values[name] = item
        if "approved_at" not in data:
            raise WireFormatError(
                "missing_field", "approval.approved_at: required", field="approval.approved_at"
            )
        nonce = data.get("nonce")
        if nonce is not None:
            _match(NONCE_PATTERN, nonce, "approval.nonce", "16-64 lowercase hex digits")
        return cls(
            key_id=values["key_id"],
            approver=values["approver"],
            approved_at=parse_time(data["approved_at"], "approval.approved_at"),
            signature=values["signature"],
            nonce=nonce,
        )


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """One thing to do on X, as pushed to `write_queue` and kept in the ledger.

    `to_dict()` is JSON-safe (enums as strings, datetimes as ISO-8601 UTC); `from_dict()` is its
    strict inverse for already-parsed data. Untrusted bytes go through `wire.decode_write_request`,
    which also enforces the payload rules.
    """

    action: WriteAction
    payload: Mapping[str, Any]
    created_at: datetime = field(default_factory=utcnow)
    moderation: ModerationStatus = ModerationStatus.PENDING
    id: str = field(default_factory=new_request_id)
    account: str = DEFAULT_ACCOUNT
    not_before: datetime | None = None
    expires_at: datetime | None = None
    revision: int = 1
    author: str | None = None
    source: Mapping[str, Any] | None = None
    approval: Approval | None = None

    def to_dict(self) -> MutableMapping[str, Any]:
        """JSON-safe dict; optional fields that are None are left out."""
        data: dict[str, Any] = {
            "id": self.id,
            "action": WriteAction(self.action).value,
            "payload": dict(self.payload),
            "created_at": format_time(self.created_at),
            "moderation": ModerationStatus(self.moderation).value,
            "account": self.account,
            "revision": self.revision,
        }
        if self.not_before is not None:
            data["not_before"] = format_time(self.not_before)
        if self.expires_at is not None:
            data["expires_at"] = format_time(self.expires_at)
        if self.author is not None:
            data["author"] = self.author
        if self.source is not None:
            data["source"] = dict(self.source)
        if self.approval is not None:
            data["approval"] = self.approval.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, default_id: str | None = None) -> WriteRequest:
        """Build a request from to_dict()'s shape; raises WireFormatError naming the field.

        A missing `id` becomes `default_id` (the wire decoder passes a hash of the raw message so
        that re-reading the same bytes gives the same id), or a fresh uuid4 hex.
        """
        return _request_from_mapping(data, default_id)

    def content_hash(self) -> str:
        """SHA-256 hex of what a moderator reviews: action, account, payload and schedule.

        The canonical JSON of {action, account, payload, not_before, expires_at} (the times in
        the wire form, or null). The approve form and API carry it back, so an approval binds to
        exactly what was shown.
        """
        body = {
            "action": WriteAction(self.action).value,
            "account": self.account,
            "payload": self.payload,
            "not_before": None if self.not_before is None else format_time(self.not_before),
            "expires_at": None if self.expires_at is None else format_time(self.expires_at),
        }
        return hashlib.sha256(canonical_json(body)).hexdigest()


_REQUEST_FIELDS = frozenset(
    {
        "id",
        "action",
        "payload",
        "created_at",
        "moderation",
        "account",
        "not_before",
        "expires_at",
        "revision",
        "author",
        "source",
        "approval",
    }
)


def _request_from_mapping(data: Mapping[str, Any], default_id: str | None) -> WriteRequest:
    if not isinstance(data, Mapping):
        raise WireFormatError("not_an_object", f"expected a JSON object, found {_describe(data)}")
    _reject_unknown(data, _REQUEST_FIELDS, "")
    for required in ("action", "payload"):
        if required not in data:
            raise WireFormatError("missing_field", f"{required}: required", field=required)
    action = _enum(WriteAction, data["action"], "action")
    payload = data["payload"]
    if not isinstance(payload, Mapping):
        raise WireFormatError(
            "invalid_field",
            f"payload: expected an object, found {_describe(payload)}",
            field="payload",
        )
    request_id = data["id"] if "id" in data else default_id or new_request_id()
    _match(ID_PATTERN, request_id, "id", "1-128 characters of A-Z a-z 0-9 . _ : -")
    account = data.get("account", DEFAULT_ACCOUNT)
    _match(ACCOUNT_PATTERN, account, "account", "1-64 characters of A-Z a-z 0-9 _ . -")
    revision = data.get("revision", 1)
    if type(revision) is not int or not 1 <= revision <= MAX_REVISION:
        raise WireFormatError(
            "invalid_field",
            f"revision: expected an integer 1-{MAX_REVISION}, found {_describe(revision)}",
            field="revision",
        )
    author = data.get("author")
    if author is not None and (not isinstance(author, str) or len(author) > MAX_AUTHOR_CHARS):
        raise WireFormatError(
            "invalid_field",
            f"author: expected a string of at most {MAX_AUTHOR_CHARS} characters, "
            f"found {_describe(author)}",
            field="author",
        )
    created = data.get("created_at")
    approval = data.get("approval")
    return WriteRequest(
        action=action,
        payload=dict(payload),
        created_at=utcnow() if created is None else parse_time(created, "created_at"),
        moderation=_enum(ModerationStatus, data.get("moderation", "pending"), "moderation"),
        id=request_id,
        account=account,
        not_before=_optional_time(data, "not_before"),
        expires_at=_optional_time(data, "expires_at"),
        revision=revision,
        author=author,
        source=_source(data.get("source")),
        approval=None if approval is None else Approval.from_dict(approval),
    )


def _source(value: object) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise WireFormatError(
            "invalid_field", f"source: expected an object, found {_describe(value)}", field="source"
        )
    _reject_unknown(value, frozenset(SOURCE_FIELDS), "source")
    for name, item in value.items():
        wanted = SOURCE_FIELDS[name]
        ok = isinstance(item, wanted) or item is None
        if isinstance(item, str):
            ok = ok and len(item) <= MAX_SOURCE_STRING_CHARS
        if isinstance(item, dict):
            # counts: {"likes": 3, ...}; plain non-negative integers only.
            ok = (
                ok
                and len(item) <= 32
                and all(
                    isinstance(k, str) and type(v) is int and 0 <= v < 2**63
                    for k, v in item.items()
                )
            )
        if not ok:
            raise WireFormatError(
                "invalid_field",
                f"source.{name}: expected {_type_name(wanted)}, found {_describe(item)}",
                field=f"source.{name}",
            )
    return dict(value)


def _optional_time(data: Mapping[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    return None if value is None else parse_time(value, name)


def _enum(kind: type[_E], value: object, name: str) -> _E:
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in kind)
    raise WireFormatError(
        "invalid_field", f"{name}: expected one of {allowed}, found {_describe(value)}", field=name
    )


def _match(pattern: re.Pattern[str], value: object, name: str, expected: str) -> None:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise WireFormatError(
            "invalid_field", f"{name}: expected {expected}, found {_describe(value)}", field=name
        )


def _reject_unknown(data: Mapping[str, Any], allowed: Collection[str], where: str) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise WireFormatError(
            "unknown_field",
            f"{prefix}{unknown[0]}: unknown field; allowed: {', '.join(sorted(allowed))}",
            field=f"{prefix}{unknown[0]}",
        )


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", dict: "an object of counts", int: "an integer"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)
