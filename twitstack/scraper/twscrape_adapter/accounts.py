"""TwscrapeAccounts: twscrape's accounts database (cookies, states, proxies, probes)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import anyio
import twscrape

from twitstack.scraper.models import (
    AccountError,
    AccountInfo,
    ResponseEvent,
    Signal,
)
from twitstack.scraper.twscrape_adapter.observe import ObservedPool


def parse_cookies(value: str) -> dict[str, str]:
    """Cookies in any format twscrape accepts (header, JSON, base64, browser export)."""
    try:
        cookies: dict[str, str] = twscrape.utils.parse_cookies(value)
    except ValueError as exc:
        raise AccountError(f"cookies are not in a format twscrape understands: {exc}") from None
    return cookies


class TwscrapeAccounts:
    """The accounts database: add/rotate cookies, list, (de)activate, proxies, probes."""

    def __init__(self, accounts_db: Path) -> None:
        if not accounts_db.is_absolute():
            raise AccountError(f"accounts_db must be an absolute path, got {accounts_db}")
        self.accounts_db = accounts_db
        self._pool = twscrape.AccountsPool(str(accounts_db))

    async def upsert_cookies(
        self, username: str, cookies: str, *, proxy: str | None = None
    ) -> None:
        """Add a cookie account or rotate its cookies; stats and locks are kept."""
        parse_cookies(cookies)  # one clear error for unreadable input
        try:
            await self._pool.add_account_cookies(username, cookies)
        except ValueError as exc:
            raise AccountError(f"{username}: {exc}") from None
        if proxy is not None:
            await self.set_proxy(username, proxy)

    async def remove(self, usernames: list[str]) -> None:
        await self._pool.delete_accounts(usernames)

    async def list_accounts(self) -> list[AccountInfo]:
        return [_info(acc) for acc in await self._pool.get_all()]

    async def get(self, username: str) -> AccountInfo | None:
        acc = await self._pool.get_account(username)
        return _info(acc) if acc is not None else None

    async def reset_locks(self) -> None:
        """Clear every queue lock (left behind by crashes and cancelled requests)."""
        await self._pool.reset_locks()

    async def deactivate(self, username: str, reason: str) -> None:
        await self._pool.mark_inactive(username, reason)

    async def reactivate(self, username: str) -> None:
        acc = await self._account(username)
        acc.active, acc.error_msg = True, None
        await self._pool.save(acc)

    async def set_proxy(self, username: str, proxy: str | None) -> None:
        acc = await self._account(username)
        acc.proxy = proxy
        await self._pool.save(acc)

    async def probe(
        self, username: str, screen_name: str, *, scratch_dir: Path, proxy: str | None = None
    ) -> list[ResponseEvent]:
        """Look up `screen_name` with this one account and return what the responses said.

        twscrape cannot pin a call to an account, so the probe runs on a scratch pool that
        holds a copy of this account only; the real pool is untouched.
        """
        acc = await self._account(username)
        acc.active, acc.error_msg, acc.locks = True, None, {}
        await anyio.Path(scratch_dir).mkdir(parents=True, exist_ok=True)
        db = anyio.Path(scratch_dir) / f"probe-{re.sub(r'[^A-Za-z0-9_]', '_', username)}.db"
        await db.unlink(missing_ok=True)
        events: list[ResponseEvent] = []
        pool = ObservedPool(str(db), raise_when_no_account=True, wait_timeout=0)
        pool.observer = events.append
        try:
            await pool.save(acc)
            api = twscrape.API(pool, proxy=proxy, raise_when_no_account=True)
            try:
                await api.user_by_login_raw(screen_name)
            except twscrape.NoAccountError:
                pass  # the probe's only account was locked or deactivated: events say why
            except twscrape.GqlFeaturesOutdatedError:
                events.append(
                    ResponseEvent(
                        username,
                        "UserByScreenName",
                        400,
                        Signal.FEATURES_OUTDATED,
                        (336,),
                        time.time(),
                    )
                )
        finally:
            await db.unlink(missing_ok=True)
        return events

    async def _account(self, username: str) -> Any:
        acc = await self._pool.get_account(username)
        if acc is None:
            raise AccountError(f"no scraping account named {username!r}")
        return acc


def _info(acc: Any) -> AccountInfo:
    return AccountInfo(
        username=acc.username,
        active=bool(acc.active),
        error_msg=acc.error_msg,
        locks=dict(acc.locks),
        last_used=acc.last_used,
        total_requests=sum(acc.stats.values()),
        proxy=acc.proxy,
    )
