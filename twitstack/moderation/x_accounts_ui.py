"""What the Accounts pages need to connect X accounts: the connector and the connected store.

Opened by the moderation service for its lifetime (it owns the HTTP client to X). The sealing
key ring is the writer's (`TWITSTACK_SEALING_KEYS`; in dev the same generated file under
data_dir): the pair moderation installs is the pair every writer replica opens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis.asyncio import Redis

from twitstack.core.sections.writer import WriterSettings
from twitstack.writes.token_store import SealedTokenStore, keyring_source
from twitstack.writes.x_accounts import ConnectedAccounts
from twitstack.writes.x_connect import ConnectError, XConnector, connect_config
from twitstack.writes.x_oauth import XOAuthClient

SecretLookup = Callable[[str], Awaitable[str | None]]


@dataclass
class XAccountsUi:
    """The connected-accounts store, and a connector built on first use (settings may lack one)."""

    accounts: ConnectedAccounts
    writer: WriterSettings
    redis: Redis
    http: httpx.AsyncClient
    secret: SecretLookup
    _connector: XConnector | None = None

    async def connector(self) -> XConnector:
        """The connector; ConnectError (with the setting to fix) when no X app is configured."""
        if self._connector is None:
            config = await connect_config(self.writer, self.secret)
            oauth = XOAuthClient(
                self.http, api_base=config.api_base, client_id=config.client_id,
                client_secret=config.client_secret,
            )  # fmt: skip
            configured = [a.name for a in self.writer.accounts]
            self._connector = XConnector(
                self.redis, self.accounts, oauth, config, configured=configured
            )
        return self._connector

    async def labels(self) -> dict[str, str]:
        """Label -> "@handle" for every connected account (for lists that show labels)."""
        return {a.name: f"@{a.username}" for a in await self.accounts.all()}

    async def refresh_handles(self, shown: dict[str, str]) -> None:
        """Replace the contents of `shown` (the templates' `x_handles`) with `labels()`, after
        the handles configured for TOML accounts (`writer.accounts[].handle`)."""
        configured = {a.name: f"@{a.handle}" for a in self.writer.accounts if a.handle}
        labels = {**configured, **await self.labels()}
        shown.clear()
        shown.update(labels)


@asynccontextmanager
async def open_x_accounts_ui(
    writer: WriterSettings, redis: Redis, secret: SecretLookup, *, env: str, data_dir: Path
) -> AsyncIterator[XAccountsUi]:
    """The UI's handle on connected accounts, with its own HTTP client to X."""
    store = SealedTokenStore(redis, keyring_source(secret, env=env, data_dir=data_dir))
    timeout = httpx.Timeout(writer.read_timeout_s, connect=writer.connect_timeout_s)
    async with httpx.AsyncClient(timeout=timeout) as http:
        yield XAccountsUi(ConnectedAccounts(redis, store), writer, redis, http, secret)


__all__ = ["ConnectError", "XAccountsUi", "open_x_accounts_ui"]
