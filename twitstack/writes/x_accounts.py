"""Connected X accounts: who they are (by X user id), their sealed tokens, and an audit trail.

One record per X user id in the hash `keys.X_ACCOUNTS` (label, handle, scopes, client id, who
connected it and when); the token pair is sealed under the label exactly as the writer keeps
it (`twitstack.writes.token_store`), so every writer replica posts through it. Installing a pair
(connect, reconnect) and removing one (disconnect) are single Lua scripts: the record, the
sealed pair, the public token hash and the audit entry change together or not at all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

from twitstack.core.logging import get_logger
from twitstack.core.sections.writer import ConnectedAccountSettings, XAccountSettings
from twitstack.writes import keys
from twitstack.writes.ledger_types import as_text
from twitstack.writes.token_store import SealedTokenStore, StoredTokens, seal_pair

_log = get_logger(__name__)

__all__ = ["AUDIT_MAXLEN", "AUTH_KIND", "ConnectedAccount", "ConnectedAccounts", "TokenHealth"]

AUTH_KIND = "oauth2-pkce"
AUDIT_MAXLEN = 10_000

# KEYS: record hash, sealed pair, public token hash, audit stream.
# ARGV: user id, record JSON, sealed blob, expires_at, now, audit fields JSON, maxlen.
# Returns the sealed pair it replaced (false: none), read in the same step, so the caller
# revokes exactly the grant that is no longer stored, whoever else is installing or refreshing.
_INSTALL = """
local old = redis.call('GET', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], 'reconnect_needed', 'reconnect_reason', 'access_token',
           'refresh_token')
redis.call('HSET', KEYS[3], 'expires_at', ARGV[4], 'refreshed_at', ARGV[5], 'installed_at', ARGV[5])
redis.call('HINCRBY', KEYS[3], 'version', 1)
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'entry', ARGV[6])
return old
"""
# KEYS: as above. ARGV: user id, audit fields JSON, maxlen. Removes only what is there.
_REMOVE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'entry', ARGV[2])
return 1
"""


@dataclass(frozen=True)
class ConnectedAccount:
    """One connected X account; `name` is twitstack's short label (requests name it)."""

    user_id: str
    username: str
    display_name: str
    name: str
    scopes: tuple[str, ...]
    client_id: str
    connected_at: float
    connected_by: str
    auth_kind: str = AUTH_KIND

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ConnectedAccount:
        fields = json.loads(text)
        fields["scopes"] = tuple(fields.get("scopes", ()))
        return cls(**fields)

    @classmethod
    def read_all(cls, raw: Mapping[bytes | str, bytes | str]) -> list[ConnectedAccount]:
        """The readable records of the `keys.X_ACCOUNTS` hash; each unreadable one is logged.

        One junk record must not keep every other account, a writer's start, the Accounts page
        or `doctor` hostage: it is skipped until someone reconnects or removes it.
        """
        found = []
        for user_id, value in raw.items():
            account = cls.read(value)
            if account is None:
                _log.error("x_accounts.record_unreadable", user_id=_lenient(user_id)[:64])
            else:
                found.append(account)
        return found

    @classmethod
    def read(cls, value: bytes | str) -> ConnectedAccount | None:
        """One record, or None when it cannot be read as one."""
        try:
            account = cls.from_json(as_text(value))
            account.writer_settings(None)  # the label and ids must also make valid settings
        except (ValueError, TypeError, KeyError, AttributeError):  # UnicodeDecodeError too
            return None
        return account

    def writer_settings(self, client_secret_secret: str | None) -> XAccountSettings:
        """The account as the writer sees it (refreshes with the client that issued it)."""
        return ConnectedAccountSettings(
            name=self.name, user_id=self.user_id, auth="oauth2", client_id=self.client_id,
            client_secret_secret=client_secret_secret, dm_read_back="dm.read" in self.scopes,
        )  # fmt: skip


@dataclass(frozen=True)
class TokenHealth:
    """What the public token hash says about an account's pair (no secret in it)."""

    expires_at: float | None = None
    refreshed_at: float | None = None
    reconnect_needed: bool = False
    reconnect_reason: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _lenient(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _num(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


class ConnectedAccounts:
    """Reads and changes connected accounts; the sealed pair goes through `tokens`."""

    def __init__(
        self, redis: Redis, tokens: SealedTokenStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._tokens = tokens
        self._clock = clock
        self._install = redis.register_script(_INSTALL)
        self._remove = redis.register_script(_REMOVE)

    @property
    def tokens(self) -> SealedTokenStore:
        return self._tokens

    async def all(self) -> list[ConnectedAccount]:
        """Every connected account, by label."""
        found = ConnectedAccount.read_all(await self._redis.hgetall(keys.X_ACCOUNTS))
        return sorted(found, key=lambda account: account.name)

    async def by_user_id(self, user_id: str) -> ConnectedAccount | None:
        raw = await self._redis.hget(keys.X_ACCOUNTS, user_id)
        return ConnectedAccount.read(raw) if raw is not None else None

    async def by_name(self, name: str) -> ConnectedAccount | None:
        return next((a for a in await self.all() if a.name == name), None)

    async def health(self, name: str) -> TokenHealth:
        """Expiry, last refresh and reconnect flag from the public token hash."""
        raw = await self._redis.hgetall(keys.oauth2_tokens(name))
        fields = {as_text(k): as_text(v) for k, v in raw.items()}
        return TokenHealth(
            expires_at=_num(fields.get("expires_at")),
            refreshed_at=_num(fields.get("refreshed_at")),
            reconnect_needed=fields.get("reconnect_needed") == "1",
            reconnect_reason=fields.get("reconnect_reason") or None,
        )

    async def install(
        self, account: ConnectedAccount, tokens: StoredTokens, *, event: str, actor: str
    ) -> str | None:
        """Store `account` and its fresh pair at once (connect or reconnect), audited; the
        sealed pair this replaced (open it with `token_store.open_pair`), or None."""
        ring = await self._tokens.ring()
        blob = seal_pair(ring, account.name, tokens)
        expires = repr(tokens.expires_at) if tokens.expires_at is not None else ""
        audit = self._entry(event, actor, account, scopes=" ".join(account.scopes))
        old = await self._install(
            keys=self._keys(account.name),
            args=[account.user_id, account.to_json(), blob, expires, repr(self._clock()), audit,
                  AUDIT_MAXLEN],
        )  # fmt: skip
        return _lenient(old) if isinstance(old, (bytes, str)) else None

    async def remove(self, account: ConnectedAccount, *, actor: str, revoked: str) -> bool:
        """Forget `account` and its credentials, audited; False if it was not connected."""
        audit = self._entry("disconnect", actor, account, revoked=revoked)
        done = await self._remove(
            keys=self._keys(account.name), args=[account.user_id, audit, AUDIT_MAXLEN]
        )
        return bool(done)

    async def audit(
        self, event: str, actor: str, account: ConnectedAccount | None, **extra: str
    ) -> None:
        """Append one entry (a refused callback, a health change) to the audit stream."""
        entry = self._entry(event, actor, account, **extra)
        await self._redis.xadd(
            keys.X_ACCOUNTS_AUDIT, {"entry": entry}, maxlen=AUDIT_MAXLEN, approximate=True
        )

    async def recent_audit(self, count: int = 50) -> list[dict[str, Any]]:
        """The newest audit entries, newest first."""
        rows = await self._redis.xrevrange(keys.X_ACCOUNTS_AUDIT, count=count) or []
        entries: list[dict[str, Any]] = []
        for _, fields in rows:
            decoded = {as_text(k): as_text(v) for k, v in (fields or {}).items()}
            if "entry" in decoded:
                entries.append(json.loads(decoded["entry"]))
        return entries

    def _entry(self, event: str, actor: str, account: ConnectedAccount | None, **extra: str) -> str:
        fields: dict[str, Any] = {"at": self._clock(), "event": event, "actor": actor, **extra}
        if account is not None:
            fields |= {"user_id": account.user_id, "username": account.username,
                       "name": account.name}  # fmt: skip
        return json.dumps(fields, sort_keys=True)

    @staticmethod
    def _keys(name: str) -> list[str]:
        return [
            keys.X_ACCOUNTS,
            keys.sealed_oauth2_tokens(name),
            keys.oauth2_tokens(name),
            keys.X_ACCOUNTS_AUDIT,
        ]
