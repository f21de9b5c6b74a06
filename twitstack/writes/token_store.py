"""OAuth 2.0 tokens in Redis, sealed: a secret blob only the writer reads, a public expiry hash.

Layout (`twitstack.writes.keys`): `twitstack:secret:oauth2:<account>` holds the sealed pair
(AES-GCM, associated data = that key name, so a blob moved to another account does not open);
`twitstack:writer:token:<account>` holds only `expires_at` and `version`, which moderation's
accounts page and the ops user may read. Entries an older release stored in plain text (the
pair as fields of the public hash) are sealed and removed from the public hash on first read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
from redis.asyncio import Redis

from twitstack.core.logging import get_logger, register_secret
from twitstack.core.sealing import (
    KeyRingError,
    SealError,
    SealingKeyRing,
    load_or_create_key_file,
)
from twitstack.writes import keys

__all__ = [
    "DEV_KEY_FILE",
    "SEALING_KEYS_SECRET",
    "KeyRingSource",
    "SealedTokenStore",
    "StoredTokens",
    "keyring_source",
    "seal_pair",
]

SecretLookup = Callable[[str], Awaitable[str | None]]
KeyRingSource = Callable[[], Awaitable[SealingKeyRing]]

# The secret (environment or AWS Secrets Manager) holding the ring, `id:base64key,…`.
SEALING_KEYS_SECRET = "TWITSTACK_SEALING_KEYS"
# Where a dev setup without that secret keeps a generated ring (inside data_dir, mode 0600).
DEV_KEY_FILE = "writer-sealing.keys"

_log = get_logger(__name__)

# KEYS: sealed blob, public hash. Seed only if no replica stored (possibly rotated) tokens yet:
# the secret's refresh token is spent after the first rotation.
_SEED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'expires_at', ARGV[2], 'version', 1)
return 1
"""
# Replace the blob only if nobody replaced it since we read it.
_ROTATE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'expires_at', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'version', 1)
return 1
"""
# Seal a plain pair an older release left in the public hash, once, and drop the plain fields.
_MIGRATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('HGET', KEYS[2], 'access_token') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], 'access_token', 'refresh_token')
redis.call('HSET', KEYS[2], 'expires_at', ARGV[3])
return 1
"""


def keyring_source(secret: SecretLookup, *, env: str, data_dir: Path | None) -> KeyRingSource:
    """Loads the ring from `SEALING_KEYS_SECRET`; in dev without it, from a generated file."""

    async def load() -> SealingKeyRing:
        text = await secret(SEALING_KEYS_SECRET)
        if text:
            return SealingKeyRing.parse(text, source=f"secret {SEALING_KEYS_SECRET}")
        if env != "dev" or data_dir is None:
            raise KeyRingError(
                f"secret {SEALING_KEYS_SECRET} is not set: OAuth 2.0 tokens are sealed at rest "
                "under it; set it to 'k1:' followed by 32 random bytes in base64 "
                "(see 'Sealing keys' in docs/operations.md)"
            )
        path = data_dir / DEV_KEY_FILE
        try:
            ring, created = await anyio.to_thread.run_sync(load_or_create_key_file, path)
        except OSError as exc:
            raise KeyRingError(f"{path}: cannot read or create the key ring: {exc}") from None
        if created:
            _log.warning("writer.sealing_key_generated", path=str(path), key_id=ring.newest_id)
        return ring

    return load


@dataclass(frozen=True, slots=True)
class StoredTokens:
    """One account's OAuth 2.0 pair as stored (unsealed)."""

    access_token: str
    refresh_token: str
    expires_at: float | None

    def to_json(self) -> bytes:
        fields = {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
        }
        return json.dumps(fields).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StoredTokens:
        fields = json.loads(data)
        expires = fields.get("expires_at")
        return cls(
            str(fields["access_token"]),
            str(fields.get("refresh_token") or ""),
            float(expires) if expires is not None else None,
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _context(account: str) -> str:
    # Associated data: the blob opens only under the Redis key (hence account) it was sealed for.
    return f"{keys.sealed_oauth2_tokens(account)}|{account}"


def seal_pair(ring: SealingKeyRing, account: str, tokens: StoredTokens) -> str:
    """`tokens` sealed for `account`'s key, as `SealedTokenStore` stores it."""
    return ring.seal(tokens.to_json(), context=_context(account))


def open_pair(ring: SealingKeyRing, account: str, blob: str) -> StoredTokens:
    """The pair `seal_pair` sealed for `account`; SealError if it does not open or hold one."""
    plaintext = ring.unseal(blob, context=_context(account))
    try:
        return StoredTokens.from_json(plaintext)
    except (ValueError, KeyError, TypeError):
        raise SealError("sealed value opened but does not hold a token pair") from None


class SealedTokenStore:
    """Reads and writes sealed OAuth 2.0 pairs; the ring is loaded on first use."""

    def __init__(self, redis: Redis, keyring: KeyRingSource) -> None:
        self._redis = redis
        self._keyring = keyring
        self._ring: SealingKeyRing | None = None
        self._seed = redis.register_script(_SEED)
        self._rotate = redis.register_script(_ROTATE)
        self._migrate = redis.register_script(_MIGRATE)

    async def ring(self) -> SealingKeyRing:
        """The key ring; KeyRingError if it is missing or malformed."""
        if self._ring is None:
            self._ring = await self._keyring()
        return self._ring

    async def read(self, account: str) -> tuple[StoredTokens, str] | None:
        """The pair and its blob, or None if nothing is stored; SealError if it does not open."""
        ring = await self.ring()
        blob = await self._redis.get(keys.sealed_oauth2_tokens(account))
        if blob is None:
            if not await self.seal_plain(account):
                return None
            blob = await self._redis.get(keys.sealed_oauth2_tokens(account))
            if blob is None:
                return None
        try:
            text = _text(blob)
        except UnicodeDecodeError:
            # Junk written at the key: the same as any seal that will not open.
            raise SealError("not a sealed value (not UTF-8 text)") from None
        plaintext = ring.unseal(text, context=_context(account))  # SealError if it does not open
        try:
            tokens = StoredTokens.from_json(plaintext)
        except (ValueError, KeyError, TypeError):
            raise SealError("sealed value opened but does not hold a token pair") from None
        register_secret(tokens.access_token, tokens.refresh_token)
        if ring.needs_reseal(text) and await self.replace(account, text, tokens):
            # Key rotation: pairs sealed under an older key move to the newest as they are read.
            _log.info("writer.token_resealed", account=account, key_id=ring.newest_id)
            return await self.read(account)
        return tokens, text

    async def seed(self, account: str, tokens: StoredTokens) -> bool:
        """Store `tokens` unless a pair is already stored; whether it was stored."""
        ring = await self.ring()
        blob = ring.seal(tokens.to_json(), context=_context(account))
        expires = repr(tokens.expires_at) if tokens.expires_at is not None else ""
        key_pair = [keys.sealed_oauth2_tokens(account), keys.oauth2_tokens(account)]
        return bool(await self._seed(keys=key_pair, args=[blob, expires]))

    async def replace(self, account: str, old_blob: str, tokens: StoredTokens) -> bool:
        """Store `tokens` if the blob is still `old_blob` (compare-and-set)."""
        ring = await self.ring()
        blob = ring.seal(tokens.to_json(), context=_context(account))
        expires = repr(tokens.expires_at) if tokens.expires_at is not None else ""
        key_pair = [keys.sealed_oauth2_tokens(account), keys.oauth2_tokens(account)]
        return bool(await self._rotate(keys=key_pair, args=[old_blob, blob, expires]))

    async def seal_plain(self, account: str) -> bool:
        """Seal a plain pair an older release stored for `account`; whether one was found."""
        public = keys.oauth2_tokens(account)
        try:
            fields = {_text(k): _text(v) for k, v in (await self._redis.hgetall(public)).items()}
            expires = fields.get("expires_at", "")
            expires_at = float(expires) if expires else None
        except (UnicodeDecodeError, ValueError):
            # Junk written at the key: the same as a seal that will not open.
            raise SealError("the stored plain token pair is unreadable") from None
        access = fields.get("access_token")
        if not access:
            return False
        ring = await self.ring()
        tokens = StoredTokens(access, fields.get("refresh_token", ""), expires_at)
        register_secret(tokens.access_token, tokens.refresh_token)
        blob = ring.seal(tokens.to_json(), context=_context(account))
        key_pair = [keys.sealed_oauth2_tokens(account), public]
        if await self._migrate(keys=key_pair, args=[access, blob, expires]):
            _log.warning("writer.plain_token_sealed", account=account, key_id=ring.newest_id)
        return True
