"""Credentials sealed at rest: AES-256-GCM under a key ring (the newest key seals, all unseal).

A sealed blob is text, `ts1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The caller's
context (the Redis key and account it is stored for) is the associated data: a blob copied to
another key or account no longer opens. A key ring is written `id:base64key[,id:base64key…]`,
newest first, as one secret (environment or AWS Secrets Manager) or one 0600 file.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from twitstack.core.errors import ConfigError, TwitstackError
from twitstack.core.openssl import AuthenticationFailed, aes_gcm_open, aes_gcm_seal

__all__ = [
    "KeyRingError",
    "SealError",
    "SealingKeyRing",
    "generate_key_ring",
    "is_sealed",
    "load_or_create_key_file",
]

_PREFIX = "ts1"
_NONCE_BYTES = 12
_KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class SealError(TwitstackError):
    """A sealed blob does not open: tampered, moved, malformed, or sealed under an unknown key."""


class KeyRingError(ConfigError):
    """A key ring that cannot be used; the message says which entry and why (never the key)."""

    def __init__(self, message: str) -> None:
        super().__init__([message])


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SealingKeyRing:
    """The keys that may open sealed blobs; `keys[0]` (the newest) seals new ones."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyRingError("sealing key ring: expected at least one key, found none")
        ids = [key_id for key_id, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise KeyRingError("sealing key ring: a key id appears twice")

    @classmethod
    def parse(cls, text: str, *, source: str) -> SealingKeyRing:
        """The ring written as `id:base64key,…` (newest first); errors name `source`."""
        entries: list[tuple[str, bytes]] = []
        for position, raw in enumerate(re.split(r"[,\s]+", text.strip()), start=1):
            if not raw:
                continue
            key_id, sep, encoded = raw.partition(":")
            if not sep or not _KEY_ID.match(key_id):
                raise KeyRingError(
                    f"{source}: entry {position}: expected 'id:base64key' with an id of "
                    "1-32 letters, digits, '_' or '-'"
                )
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != _KEY_BYTES:
                raise KeyRingError(
                    f"{source}: key {key_id!r}: expected {_KEY_BYTES} bytes in base64, "
                    f"found {len(key)}"
                )
            entries.append((key_id, key))
        if not entries:
            raise KeyRingError(f"{source}: expected at least one 'id:base64key', found none")
        return cls(tuple(entries))

    @property
    def newest_id(self) -> str:
        return self.keys[0][0]

    def seal(self, plaintext: bytes, *, context: str) -> str:
        """`plaintext` sealed under the newest key, bound to `context`."""
        key_id, key = self.keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = aes_gcm_seal(key, nonce, plaintext, _aad(key_id, context))
        return f"{_PREFIX}.{key_id}.{_b64encode(nonce + sealed)}"

    def unseal(self, blob: str, *, context: str) -> bytes:
        """The plaintext of `blob`, which must have been sealed for `context`; else SealError."""
        prefix, _, rest = blob.partition(".")
        key_id, _, body = rest.partition(".")
        if prefix != _PREFIX or not body:
            raise SealError("not a sealed value (expected 'ts1.<key id>.<data>')")
        key = dict(self.keys).get(key_id)
        if key is None:
            raise SealError(f"sealed under key {key_id!r}, which the key ring does not hold")
        try:
            data = _b64decode(body)
        except (binascii.Error, ValueError):
            raise SealError("sealed value is not valid base64") from None
        if _b64encode(data) != body:
            # Unused low bits of the last character: the same bytes, but not the stored text.
            raise SealError("sealed value is not in canonical base64")
        if len(data) < _NONCE_BYTES + 16:
            raise SealError("sealed value is too short")
        try:
            nonce, sealed = data[:_NONCE_BYTES], data[_NONCE_BYTES:]
            return aes_gcm_open(key, nonce, sealed, _aad(key_id, context))
        except AuthenticationFailed:
            raise SealError(
                "sealed value does not authenticate (altered, or moved from another key)"
            ) from None

    def needs_reseal(self, blob: str) -> bool:
        """Whether `blob` was sealed under an older key than the newest."""
        return not blob.startswith(f"{_PREFIX}.{self.newest_id}.")


def _aad(key_id: str, context: str) -> bytes:
    return f"{_PREFIX}|{key_id}|{context}".encode()


def is_sealed(value: str) -> bool:
    """Whether `value` looks like a sealed blob (not whether it opens)."""
    return value.startswith(_PREFIX + ".")


def generate_key_ring(key_id: str | None = None) -> str:
    """A new one-key ring as text: `id:base64key`."""
    key_id = key_id or "k" + secrets.token_hex(4)
    if not _KEY_ID.match(key_id):
        raise KeyRingError(f"key id {key_id!r}: expected 1-32 letters, digits, '_' or '-'")
    return f"{key_id}:{base64.b64encode(os.urandom(_KEY_BYTES)).decode()}"


def load_or_create_key_file(path: Path) -> tuple[SealingKeyRing, bool]:
    """The ring in `path`, created (mode 0600, never replaced) if missing; (ring, created)."""
    created = False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(generate_key_ring() + "\n")
        created = True
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyRingError(f"{path}: mode {mode:o} lets others read the key; chmod 600 it")
    return SealingKeyRing.parse(path.read_text(), source=str(path)), created
