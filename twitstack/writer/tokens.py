"""Per-account X credentials: sealed OAuth 2.0 tokens refreshed single-flight, or OAuth 1.0a."""

from __future__ import annotations

import contextlib
import secrets
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio
import httpx
from redis.asyncio import Redis

from twitstack.core.errors import TwitstackError
from twitstack.core.logging import get_logger, register_secret
from twitstack.core.sealing import KeyRingError, SealError
from twitstack.core.secrets import aget_secret
from twitstack.core.sections.writer import XAccountSettings
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.outcome import AuthKind
from twitstack.writer.xapi_client import BearerAuth, OAuth2Tokens, TokenRefreshRejected, XApiClient
from twitstack.writes import keys
from twitstack.writes.token_store import (
    KeyRingSource,
    SealedTokenStore,
    StoredTokens,
    keyring_source,
)

SecretLookup = Callable[[str], Awaitable[str | None]]
_log = get_logger("twitstack.writer.tokens")

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class CredentialsError(TwitstackError):
    """An account's credentials are missing, or X refused them; an operator must act."""


def oauth1_auth(
    consumer_key: str, consumer_secret: str, token: str, token_secret: str
) -> httpx.Auth:
    """An Authlib OAuth 1.0a signer for httpx that keeps JSON bodies (force_include_body)."""
    with warnings.catch_warnings():
        # Authlib 1.9 warns on import that its httpx integration will move to httpx2, after
        # installing an "always" filter for that warning: override it, then import.
        import authlib.deprecate  # noqa: F401

        warnings.simplefilter("ignore")
        from authlib.integrations.httpx_client import OAuth1Auth

    # Without force_include_body Authlib sends an empty body for json= POSTs (research §3.5).
    auth: httpx.Auth = OAuth1Auth(
        consumer_key,
        client_secret=consumer_secret,
        token=token,
        token_secret=token_secret,
        force_include_body=True,
    )
    return auth


@dataclass(frozen=True, slots=True)
class AccountAuth:
    """Ready-to-use credentials for one account."""

    account: str
    kind: AuthKind
    auth: httpx.Auth
    access_token: str | None = None  # OAuth2: identifies the token a 401 was answered to
    expires_at: float | None = None


class TokenManager:
    """Hands out credentials per account and refreshes OAuth 2.0 tokens once across replicas."""

    def __init__(
        self,
        redis: Redis,
        client: XApiClient,
        accounts: Sequence[XAccountSettings],
        *,
        clock: Callable[[], float],
        secret: SecretLookup = aget_secret,
        leeway_s: float = 60.0,
        lock_ttl_s: float = 30.0,
        metrics: WriterMetrics | None = None,
        cache_s: float = 5.0,
        keyring: KeyRingSource | None = None,
        lookup: Callable[[str], XAccountSettings | None] | None = None,
        spend: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._redis = redis
        # Charges one token refresh of the named account to the spend ledger (when billed).
        self._charge_refresh = spend
        self._client = client
        self._accounts = {account.name: account for account in accounts}
        # Accounts connected from the UI or CLI (WriterSettings.account); TOML names win.
        self._lookup = lookup
        self._clock = clock
        self._secret = secret
        self._leeway_s = leeway_s
        self._lock_ttl_s = lock_ttl_s
        # Without a ring source, the ring must come from the secret (no dev key file).
        self._store = SealedTokenStore(
            redis, keyring or keyring_source(secret, env="prod", data_dir=None)
        )
        self._unlock = redis.register_script(_UNLOCK)
        self._local_locks: dict[str, anyio.Lock] = {}
        self._oauth1: dict[str, AccountAuth] = {}
        self._metrics = metrics
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, StoredTokens]] = {}

    def _config(self, name: str) -> XAccountSettings:
        account = self._accounts.get(name)
        if account is None and self._lookup is not None:
            account = self._lookup(name)
        if account is None:
            raise CredentialsError(f"account {name!r} is not configured")
        return account

    async def _required_secret(self, name: str | None, account: str) -> str:
        value = await self._secret(name) if name else None
        if not value:
            raise CredentialsError(f"account {account!r}: secret {name!r} is not set")
        register_secret(value)
        return value

    async def auth_for(self, name: str) -> AccountAuth:
        """Credentials for account `name`, refreshing an OAuth2 token about to expire."""
        account = self._config(name)
        if account.auth == "oauth1":
            return await self._oauth1_auth(account)
        stored = await self._cached(account)
        if stored.expires_at is not None and stored.expires_at - self._leeway_s <= self._clock():
            return await self.refresh(name, stored.access_token)
        return self._as_auth(name, stored)

    async def _oauth1_auth(self, account: XAccountSettings) -> AccountAuth:
        cached = self._oauth1.get(account.name)
        if cached is None:
            values = [
                await self._required_secret(secret_name, account.name)
                for secret_name in (
                    account.consumer_key_secret,
                    account.consumer_secret_secret,
                    account.access_token_secret,
                    account.token_secret_secret,
                )
            ]
            cached = AccountAuth(account.name, "oauth1", oauth1_auth(*values))
            self._oauth1[account.name] = cached
        return cached

    @staticmethod
    def _as_auth(name: str, stored: StoredTokens) -> AccountAuth:
        register_secret(stored.access_token, stored.refresh_token)
        return AccountAuth(
            name, "oauth2", BearerAuth(stored.access_token), stored.access_token, stored.expires_at
        )

    async def _cached(self, account: XAccountSettings) -> StoredTokens:
        # Re-read Redis at most every cache_s: a pair another replica rotated is picked up then,
        # or at once when X answers 401 to the old token (refresh() always reads Redis).
        hit = self._cache.get(account.name)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._cache_s:
            return hit[1]
        return await self._load(account)

    async def open(self) -> int:
        """Load the sealing key ring and seal plain pairs an older release stored.

        Called at writer start so a missing key is a start-up error, not a paused account.
        Returns how many accounts had a plain pair sealed. No-op without OAuth 2.0 accounts.
        """
        oauth2 = [a.name for a in self._accounts.values() if a.auth == "oauth2"]
        if not oauth2:
            return 0
        await self._store.ring()
        sealed = 0
        for name in oauth2:
            if await self._redis.exists(keys.sealed_oauth2_tokens(name)):
                continue
            try:
                sealed += await self._store.seal_plain(name)
            except SealError as exc:
                # One account's junk pair must not stop the writer: that account is paused
                # (credentials) when a request needs it, the others go on.
                _log.error("writer.token_unsealable", account=name, reason=str(exc))
        return sealed

    async def _load(self, account: XAccountSettings) -> StoredTokens:
        return (await self._load_sealed(account))[0]

    async def _load_sealed(self, account: XAccountSettings) -> tuple[StoredTokens, str]:
        try:
            found = await self._store.read(account.name)
            if found is None and account.connected:
                raise CredentialsError(
                    f"account {account.name!r} was disconnected: no stored tokens; reconnect it"
                )
            if found is None:
                access = await self._required_secret(account.access_token_secret, account.name)
                refresh = (
                    await self._secret(account.refresh_token_secret)
                    if account.refresh_token_secret
                    else None
                )
                await self._store.seed(account.name, StoredTokens(access, refresh or "", None))
                found = await self._store.read(account.name)
        except (SealError, KeyRingError) as exc:
            _log.error("writer.token_unsealable", account=account.name, reason=str(exc))
            raise CredentialsError(
                f"account {account.name!r}: stored OAuth 2.0 tokens refused: {exc}; "
                "re-authorise the account or fix the sealing key ring"
            ) from None
        if found is None:
            raise CredentialsError(f"account {account.name!r}: token store emptied during seed")
        stored, blob = found
        self._cache[account.name] = (time.monotonic(), stored)
        self._expiry_seen(account.name, stored.expires_at)
        return stored, blob

    def _expiry_seen(self, account: str, expires_at: float | None) -> None:
        # Every load and refresh, so the alert sees a rotated pair from another replica too.
        if self._metrics is None:
            return
        gauge = self._metrics.token_expiry
        if expires_at is not None:
            gauge.labels(account=account).set(expires_at)
        else:
            # Seeded from the secrets, expiry unknown: no series rather than a wrong one.
            with contextlib.suppress(KeyError):
                gauge.remove(account)

    async def refresh(self, name: str, failed_access_token: str | None) -> AccountAuth:
        """Replace the access token X refused (or that is expiring), once across all replicas.

        If another worker or replica already replaced it, its new token is returned without
        spending the refresh token again.
        """
        account = self._config(name)
        if account.auth == "oauth1":
            raise CredentialsError(f"account {name!r} uses OAuth 1.0a: there is no refresh")
        lock = self._local_locks.setdefault(name, anyio.Lock())
        async with lock:
            stored = await self._load(account)
            if stored.access_token != failed_access_token:
                return self._as_auth(name, stored)
            return await self._refresh_across_replicas(account, failed_access_token)

    async def _refresh_across_replicas(
        self, account: XAccountSettings, failed: str | None
    ) -> AccountAuth:
        lock_key = keys.token_refresh_lock(account.name)
        owner = secrets.token_hex(16)
        ttl_ms = int(self._lock_ttl_s * 1000)
        with anyio.fail_after(self._lock_ttl_s * 2):
            while not await self._redis.set(lock_key, owner, nx=True, px=ttl_ms):
                # Another replica is refreshing: wait for its new pair rather than racing it.
                await anyio.sleep(0.05)
                stored = await self._load(account)
                if stored.access_token != failed:
                    return self._as_auth(account.name, stored)
        try:
            stored, blob = await self._load_sealed(account)
            if stored.access_token != failed:
                return self._as_auth(account.name, stored)
            fresh = await self._spend(account, stored, blob)
            return self._as_auth(account.name, fresh)
        finally:
            await self._unlock(keys=[lock_key], args=[owner])

    async def _spend(
        self, account: XAccountSettings, stored: StoredTokens, blob: str
    ) -> StoredTokens:
        if not stored.refresh_token or not account.client_id:
            raise CredentialsError(f"account {account.name!r}: no refresh token or client_id")
        client_secret = (
            await self._required_secret(account.client_secret_secret, account.name)
            if account.client_secret_secret
            else None
        )
        try:
            tokens: OAuth2Tokens = await self._client.refresh_oauth2(
                client_id=account.client_id,
                client_secret=client_secret,
                refresh_token=stored.refresh_token,
            )
        except TokenRefreshRejected as exc:
            if self._charge_refresh is not None:
                await self._charge_refresh(account.name)
            # A replica whose lock expired may have rotated the pair under us: re-read first.
            again = await self._load(account)
            if again.refresh_token != stored.refresh_token:
                return again
            _log.error("writer.token_refresh_rejected", account=account.name, x_message=str(exc))
            # X's own refusal of the refresh token: only a person can fix this (reconnect).
            await self.reconnect_needed(account.name, str(exc))
            raise CredentialsError(
                f"account {account.name!r}: X rejected the refresh token ({exc}); "
                "re-authorise: reconnect it"
            ) from None
        register_secret(tokens.access_token, tokens.refresh_token)
        expires_at = self._clock() + tokens.expires_in_s
        fresh = StoredTokens(tokens.access_token, tokens.refresh_token, expires_at)
        # Persist the rotated pair BEFORE using it: the old refresh token is already spent.
        if not await self._store.replace(account.name, blob, fresh):
            # Reconnected meanwhile (a new grant was installed): use that pair.
            again = await self._load(account)
            if again.access_token != stored.access_token:
                return again
            raise CredentialsError(f"account {account.name!r}: token store changed during refresh")
        refreshed_at = self._clock()
        await self._redis.hset(keys.oauth2_tokens(account.name), "refreshed_at", repr(refreshed_at))
        if self._charge_refresh is not None:  # after the rotated pair is safe
            await self._charge_refresh(account.name)
        if self._metrics is not None:
            self._metrics.token_refreshes.labels(account=account.name).inc()
            self._metrics.token_last_refresh.labels(account=account.name).set(refreshed_at)
            self._metrics.reconnect_needed.labels(account=account.name).set(0)
        self._expiry_seen(account.name, expires_at)
        _log.info("writer.token_refreshed", account=account.name, expires_at=expires_at)
        self._cache[account.name] = (time.monotonic(), fresh)
        return fresh

    async def reconnect_needed(self, name: str, x_message: str) -> None:
        """Mark `name` as needing a person to reconnect it, with X's own words.

        Called only on X's refusal of the refresh token, or a 401 to a token just refreshed;
        never on timeouts, 5xx or 429. Connecting the account again clears the mark.
        """
        await self._redis.hset(
            keys.oauth2_tokens(name),
            mapping={"reconnect_needed": "1", "reconnect_reason": x_message[:500]},
        )
        if self._metrics is not None:
            self._metrics.reconnect_needed.labels(account=name).set(1)
        _log.error("writer.account_reconnect_needed", account=name, x_message=x_message)
