"""Connected accounts into the writer's settings, and token health into its metrics.

Runs at start and every few seconds on every replica: accounts connected from the UI or the
CLI become usable (TOML names win), and the per-account gauges (token expiry, last refresh,
reconnect needed) follow what any replica wrote to the public token hashes. When a new pair
was installed for an account this writer paused for its credentials, the pause is lifted.
"""

from __future__ import annotations

import contextlib

from redis.asyncio import Redis

from twitstack.core.logging import get_logger
from twitstack.core.sections.writer import WriterSettings
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.ratelimit import AccountPauses
from twitstack.writer.zero_series import account_at_zero
from twitstack.writes import keys
from twitstack.writes.x_accounts import ConnectedAccount

_log = get_logger("twitstack.writer.account_health")


def _num(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _lenient(value: bytes | str) -> str:
    # Public health fields only: junk shows as U+FFFD instead of stopping the pass.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class AccountHealth:
    """Keeps `config`'s connected accounts and the health gauges current."""

    def __init__(
        self, redis: Redis, config: WriterSettings, pauses: AccountPauses, metrics: WriterMetrics
    ) -> None:
        self._redis = redis
        self._config = config
        self._pauses = pauses
        self._metrics = metrics
        self._installed: dict[str, str] = {}  # account -> installed_at last seen
        self._first = True

    async def sync(self) -> int:
        """One pass; returns how many connected accounts there are."""
        connected = ConnectedAccount.read_all(await self._redis.hgetall(keys.X_ACCOUNTS))
        secret = self._config.oauth2_client_secret_secret
        usable = [a.writer_settings(secret) for a in connected]
        self._config.use_connected(usable)
        names = [a.name for a in self._config.accounts if a.auth == "oauth2"]
        names += [a.name for a in self._config.connected_accounts()]
        for name in names:
            await self._account(name)
        self._first = False
        return len(connected)

    async def ensure(self, name: str | None) -> None:
        """Sync now if `name` is unknown (just connected); costs nothing for known accounts."""
        if self._config.account(name) is None:
            await self.sync()

    async def _account(self, name: str) -> None:
        raw = await self._redis.hgetall(keys.oauth2_tokens(name))
        fields = {_lenient(k): _lenient(v) for k, v in raw.items()}
        expires = _num(fields.get("expires_at"))
        refreshed = _num(fields.get("refreshed_at"))
        if expires is not None:
            self._metrics.token_expiry.labels(account=name).set(expires)
        if refreshed is not None:
            self._metrics.token_last_refresh.labels(account=name).set(refreshed)
        needed = fields.get("reconnect_needed") == "1"
        self._metrics.reconnect_needed.labels(account=name).set(1 if needed else 0)
        installed = fields.get("installed_at", "")
        if name not in self._installed and all(a.name != name for a in self._config.accounts):
            account_at_zero(self._metrics, name)  # a connected account, first seen (TOML: start)
        changed = bool(installed) and self._installed.get(name) not in (None, installed)
        self._installed[name] = installed
        if needed or not (changed or (self._first and installed)):
            return
        # A new pair was connected: requests waiting on the credentials pause may go again.
        pause = await self._pauses.paused(name)
        if pause is not None and pause.reason == "credentials":
            await self._pauses.resume(name)
            with contextlib.suppress(KeyError):
                self._metrics.account_paused.labels(account=name).set(0)
            _log.info("writer.account_resumed_after_reconnect", account=name)
