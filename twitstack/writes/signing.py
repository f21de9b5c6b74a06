"""Ed25519 approval signatures: the moderation service signs, writer hosts only verify.

The signed message is the canonical JSON array
`["twitstack.approval.v2", id, revision, action, account, content_hash, not_before, expires_at,
approver, approved_at, nonce]`, so changing anything that decides what is done and when voids
the signature. The nonce lets the ledger spend each approval once. Keys are identified by
`key_id` (16 hex digits of SHA-256 over the raw public key), which lets a verifier hold old and
new public keys during a rotation. Approvals in the old v1 format (no nonce, schedule unsigned)
are refused as `old_format`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from twitstack.core.openssl import Ed25519Verifier
from twitstack.writes.errors import ApprovalError, KeyFormatError
from twitstack.writes.models import (
    Approval,
    ModerationStatus,
    WriteRequest,
    canonical_json,
    format_time,
    utcnow,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

# cryptography is imported where keys are generated, loaded as objects or used to sign
# (moderation, the key commands), not at import: a writer only verifies, and does that through
# twitstack.core.openssl with the raw public keys (5.3 MiB less resident; see there).

SIGNATURE_DOMAIN = "twitstack.approval.v2"
# A PEM SubjectPublicKeyInfo of an Ed25519 key is this DER prefix, then the raw 32 bytes.
_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
# The y coordinates (mod p) of the eight points of order dividing 8: a public key on one of
# them verifies signatures nobody made (R the identity and S zero, for the identity key, on
# every message), so it is refused however it is encoded.
_P25519 = 2**255 - 19
_Y_ORDER_8 = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
_SMALL_ORDER_Y = frozenset({0, 1, _P25519 - 1, _Y_ORDER_8, _P25519 - _Y_ORDER_8})
# Approvals stamped this far in the future are refused when a max age is enforced.
MAX_CLOCK_SKEW = timedelta(minutes=5)


class ApprovalFailure(enum.StrEnum):
    """Why an approval did not verify (the `reason` of ApprovalError and ApprovalCheck)."""

    MISSING = "missing"  # no approval record on the request
    UNKNOWN_KEY = "unknown_key"  # signed by a key this verifier does not hold
    MALFORMED = "malformed"  # the signature is not base64 of 64 bytes
    BAD_SIGNATURE = "bad_signature"  # tampered content or a forged signature
    STALE = "stale"  # older than max_age (or stamped in the future)
    OLD_FORMAT = "old_format"  # a v1 approval: no nonce, schedule not signed


@dataclass(frozen=True, slots=True)
class ApprovalCheck:
    """The outcome of verifying one request's approval."""

    ok: bool
    reason: ApprovalFailure | None = None
    key_id: str | None = None


def generate_private_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 signing key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def generate_key_pair() -> tuple[str, str]:
    """A fresh (private, public) pair as base64 of the raw 32-byte keys."""
    key = generate_private_key()
    return private_key_to_base64(key), public_key_to_base64(key.public_key())


def private_key_to_base64(key: Ed25519PrivateKey) -> str:
    """Base64 of the raw 32-byte private key (the form `load_private_key` takes)."""
    from cryptography.hazmat.primitives import serialization

    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return base64.b64encode(raw).decode("ascii")


def public_key_to_base64(key: Ed25519PublicKey) -> str:
    """Base64 of the raw 32-byte public key (what writer settings list)."""
    return base64.b64encode(_public_raw(key)).decode("ascii")


def private_key_to_pem(key: Ed25519PrivateKey) -> str:
    """Unencrypted PKCS#8 PEM of a private key."""
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_key_to_pem(key: Ed25519PublicKey) -> str:
    """SubjectPublicKeyInfo PEM of a public key."""
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_private_key(text: str | Ed25519PrivateKey) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) or base64 of the raw 32 bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(text, Ed25519PrivateKey):
        return text
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(stripped.encode("ascii"), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(_b64decode(stripped, 32))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise KeyFormatError(f"expected an Ed25519 private key (PEM or base64): {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"expected an Ed25519 private key, found {type(key).__name__}")
    return key


def load_public_key(text: str | Ed25519PublicKey) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or base64 of the raw 32 bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if isinstance(text, Ed25519PublicKey):
        return text
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(stripped.encode("ascii"))
        else:
            key = Ed25519PublicKey.from_public_bytes(_b64decode(stripped, 32))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise KeyFormatError(f"expected an Ed25519 public key (PEM or base64): {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFormatError(f"expected an Ed25519 public key, found {type(key).__name__}")
    _refuse_small_order(_public_raw(key))
    return key


def _refuse_small_order(raw: bytes) -> bytes:
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y % _P25519 in _SMALL_ORDER_Y:
        raise KeyFormatError(
            "expected an Ed25519 public key: this one is a point of small order, "
            "for which anyone can make signatures"
        )
    return raw


def key_id(public_key: Ed25519PublicKey) -> str:
    """16 hex digits naming a public key; stable across encodings."""
    return _raw_key_id(_public_raw(public_key))


def _raw_key_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def _public_raw(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def raw_public_key(text: str | Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of the key `load_public_key` loads from `text`, with the same errors.

    The two forms writer settings hold (base64 of the raw bytes, the PEM SubjectPublicKeyInfo
    of an Ed25519 key) are read here without cryptography; any other text, and key objects,
    go through `load_public_key`, so what it refuses is refused in its words.
    """
    if isinstance(text, str):
        stripped = text.strip()
        if not stripped.startswith("-----BEGIN"):
            with contextlib.suppress(ValueError, TypeError, UnicodeEncodeError):
                return _refuse_small_order(_b64decode(stripped, 32))
        else:
            der = _pem_body(stripped, "PUBLIC KEY")
            if der is not None and len(der) == 44 and der.startswith(_ED25519_SPKI_PREFIX):
                return _refuse_small_order(der[len(_ED25519_SPKI_PREFIX) :])
    return _public_raw(load_public_key(text))


def _pem_body(text: str, label: str) -> bytes | None:
    """The DER inside one PEM block labelled `label`, or None if `text` is not exactly that."""
    lines = text.splitlines()
    if len(lines) < 3 or lines[0] != f"-----BEGIN {label}-----":
        return None
    if lines[-1] != f"-----END {label}-----":
        return None
    body = "".join(lines[1:-1])
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None
    # cryptography refuses a last character with unused bits set, which b64decode ignores:
    # such a text is left to load_public_key, to be refused there too.
    return der if base64.b64encode(der).decode("ascii") == body else None


def new_nonce() -> str:
    """A fresh approval nonce: 32 hex digits from the OS's CSPRNG."""
    return secrets.token_hex(16)


def _optional_time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def approval_message(
    request: WriteRequest, *, approver: str, approved_at: datetime, nonce: str
) -> bytes:
    """The exact bytes an approval signs for this revision of `request`."""
    return canonical_json(
        [
            SIGNATURE_DOMAIN,
            request.id,
            request.revision,
            str(request.action),
            request.account,
            request.content_hash(),
            _optional_time(request.not_before),
            _optional_time(request.expires_at),
            approver,
            format_time(approved_at),
            nonce,
        ]
    )


class ApprovalSigner:
    """Signs approvals with one private key (held by the moderation service only)."""

    def __init__(self, private_key: Ed25519PrivateKey | str) -> None:
        self._key = load_private_key(private_key)
        self.public_key = self._key.public_key()
        self.key_id = key_id(self.public_key)

    def sign(
        self,
        request: WriteRequest,
        *,
        approver: str,
        approved_at: datetime | None = None,
        nonce: str | None = None,
    ) -> Approval:
        """The approval record for the current revision of `request`, signed by `approver`."""
        when = approved_at or utcnow()
        # Round-trip through the wire form so the signed time is exactly what verifiers see.
        when = datetime.fromisoformat(format_time(when))
        spend_once = nonce or new_nonce()
        message = approval_message(request, approver=approver, approved_at=when, nonce=spend_once)
        signature = self._key.sign(message)
        return Approval(
            key_id=self.key_id,
            approver=approver,
            approved_at=when,
            signature=base64.urlsafe_b64encode(signature).decode("ascii").rstrip("="),
            nonce=spend_once,
        )

    def approve(
        self, request: WriteRequest, *, approver: str, approved_at: datetime | None = None
    ) -> WriteRequest:
        """`request` marked approved and carrying a fresh signature."""
        approval = self.sign(request, approver=approver, approved_at=approved_at)
        return replace(request, moderation=ModerationStatus.APPROVED, approval=approval)


class ApprovalVerifier:
    """Verifies approvals against a set of trusted public keys (old and new during rotation)."""

    def __init__(
        self,
        public_keys: Iterable[Ed25519PublicKey | str],
        *,
        max_age_s: float | None = None,
    ) -> None:
        loaded = [raw_public_key(key) for key in public_keys]
        self._keys = {_raw_key_id(raw): Ed25519Verifier(raw) for raw in loaded}
        self._max_age = None if max_age_s is None else timedelta(seconds=max_age_s)

    @property
    def key_ids(self) -> frozenset[str]:
        """Ids of the keys this verifier trusts."""
        return frozenset(self._keys)

    def check(self, request: WriteRequest, *, now: datetime | None = None) -> ApprovalCheck:
        """Whether `request.approval` is a valid signature over the request as it is now."""
        approval = request.approval
        if approval is None:
            return ApprovalCheck(False, ApprovalFailure.MISSING)
        if approval.nonce is None:
            # Upgrade note (docs/operations.md): v1 approvals did not sign the schedule and
            # cannot be spent once, so a human approves them again.
            return ApprovalCheck(False, ApprovalFailure.OLD_FORMAT, approval.key_id)
        key = self._keys.get(approval.key_id)
        if key is None:
            return ApprovalCheck(False, ApprovalFailure.UNKNOWN_KEY, approval.key_id)
        try:
            signature = _b64decode(approval.signature, 64)
        except ValueError:
            return ApprovalCheck(False, ApprovalFailure.MALFORMED, approval.key_id)
        message = approval_message(
            request,
            approver=approval.approver,
            approved_at=approval.approved_at,
            nonce=approval.nonce,
        )
        if not key.verify(signature, message):
            return ApprovalCheck(False, ApprovalFailure.BAD_SIGNATURE, approval.key_id)
        if self._max_age is not None:
            current = now or utcnow()
            age = current - approval.approved_at
            if age > self._max_age or age < -MAX_CLOCK_SKEW:
                return ApprovalCheck(False, ApprovalFailure.STALE, approval.key_id)
        return ApprovalCheck(True, None, approval.key_id)

    def verify(self, request: WriteRequest, *, now: datetime | None = None) -> None:
        """Like `check`, but raises ApprovalError(reason) unless the approval is valid."""
        result = self.check(request, now=now)
        if not result.ok:
            assert result.reason is not None
            raise ApprovalError(
                result.reason.value, f"approval of request {request.id} does not verify"
            )


def _b64decode(text: str, length: int) -> bytes:
    """Standard or URL-safe base64, padded or not, of exactly `length` bytes."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        raw = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {exc}") from None
    if len(raw) != length:
        raise ValueError(f"expected {length} bytes, found {len(raw)}")
    return raw
