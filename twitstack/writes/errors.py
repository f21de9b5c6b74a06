"""Errors raised by the write-request domain, rooted at TwitstackError.

TwitstackError
└── WriteRequestError           anything wrong with a write request or its handling
    ├── WireFormatError         a queue message that is not a valid request (reason_code)
    │   └── PayloadError        the payload breaks a rule of its action (names the field)
    ├── ApprovalError           an approval signature is missing, unknown or wrong
    ├── KeyFormatError          a signing key could not be loaded
    ├── InvalidTransitionError  code asked for a state change the table forbids
    └── UnreadableError         shared data in Redis (a ledger record, an event) that cannot be read
"""

from __future__ import annotations

from twitstack.core.errors import TwitstackError


class WriteRequestError(TwitstackError):
    """Root of the write-request domain's errors."""


class WireFormatError(WriteRequestError):
    """A message is not a valid write request; `reason_code` is machine-readable.

    Reason codes: too_large, invalid_utf8, invalid_unicode, invalid_json, duplicate_key,
    non_finite_number, too_deep, not_an_object, unknown_field, missing_field, invalid_field,
    invalid_payload.
    """

    def __init__(self, reason_code: str, message: str, *, field: str | None = None) -> None:
        self.reason_code = reason_code
        self.message = message
        self.field = field
        super().__init__(f"{reason_code}: {message}")


class PayloadError(WireFormatError):
    """A payload field breaks its action's rules; `field` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("invalid_payload", f"{field}: {message}", field=field)


class ApprovalError(WriteRequestError):
    """An approval does not verify; `reason` is one of ApprovalFailure's values."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class KeyFormatError(WriteRequestError):
    """A key string is neither PEM nor base64 of an Ed25519 key of the expected kind."""


class InvalidTransitionError(WriteRequestError):
    """A state change that the transition table does not allow (a programming error)."""


class UnreadableError(WriteRequestError):
    """A ledger record or event in Redis that cannot be parsed; readers quarantine it.

    `source` is "record" or "event", `ref` the request id or stream id, `reason` a short
    machine-readable code, `detail` what was wrong (never the record's content).
    """

    def __init__(self, source: str, ref: str, reason: str, detail: str) -> None:
        self.source = source
        self.ref = ref
        self.reason = reason
        self.detail = detail
        super().__init__(f"unreadable {source} {ref}: {reason}: {detail}")
