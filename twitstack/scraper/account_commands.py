"""Handlers of `accounts add|import-cookies|list|check|remove` (loaded only when one runs)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from twitstack.core.metrics import new_registry
from twitstack.scraper.cookies import load_cookie_file
from twitstack.scraper.health import AccountHealth
from twitstack.scraper.metrics import ScraperMetrics
from twitstack.scraper.models import AccountState
from twitstack.scraper.paths import accounts_db_path, ensure_state_dir
from twitstack.scraper.twscrape_adapter import TwscrapeAccounts, configure_twscrape

if TYPE_CHECKING:
    from twitstack.core.config import Settings


def _accounts(settings: Settings) -> TwscrapeAccounts:
    configure_twscrape(graphql_url=settings.scraper.graphql_url_override)
    return TwscrapeAccounts(accounts_db_path(settings))


def _health(settings: Settings, accounts: TwscrapeAccounts) -> AccountHealth:
    return AccountHealth(
        accounts,
        ScraperMetrics(new_registry()),
        suspect_window_s=settings.scraper.suspect_error_window_s,
        probe_screen_name=settings.scraper.probe_screen_name,
        scratch_dir=ensure_state_dir(settings) / "scraper-probes",
    )


def accounts_add(args: argparse.Namespace, settings: Settings) -> int:
    """Add a cookie account, or rotate its cookies (stats and locks are kept)."""

    async def main() -> int:
        await _accounts(settings).upsert_cookies(args.username, args.cookies, proxy=args.proxy)
        print(f"account {args.username}: cookies stored, active")
        return 0

    return anyio.run(main)


def accounts_import(args: argparse.Namespace, settings: Settings) -> int:
    """Upsert every account of a cookie JSON file (default: the `cookie_path` setting)."""
    path: Path = args.path or settings.cookie_path

    async def main() -> int:
        accounts = _accounts(settings)
        pairs = load_cookie_file(path, username=args.username)
        for username, cookies in pairs:
            await accounts.upsert_cookies(username, cookies)
        print(f"imported cookies for {len(pairs)} account(s) from {path}")
        return 0

    return anyio.run(main)


def accounts_list(args: argparse.Namespace, settings: Settings) -> int:
    """One line per account: state, requests, proxy, active locks, last error."""

    async def main() -> int:
        accounts = _accounts(settings)
        health = _health(settings, accounts)
        now = datetime.now(UTC)
        for info in await accounts.list_accounts():
            locks = ", ".join(
                f"{queue} until {until:%H:%M:%S}" for queue, until in info.locks.items()
                if until > now
            )  # fmt: skip
            print(
                f"{info.username:<20} {health.state_of(info).value:<12} "
                f"requests={info.total_requests:<6} proxy={'yes' if info.proxy else 'no':<3} "
                f"locks=[{locks}] error={info.error_msg or '-'}"
            )
        return 0

    return anyio.run(main)


def accounts_check(args: argparse.Namespace, settings: Settings) -> int:
    """Probe the named (default: all) accounts now; exit 1 if any is not active afterwards."""

    async def main() -> int:
        accounts = _accounts(settings)
        health = _health(settings, accounts)
        names = args.usernames or [a.username for a in await accounts.list_accounts()]
        worst = 0
        for name in names:
            state = await health.probe(name)
            print(f"{name:<20} {state.value}")
            worst = max(worst, 0 if state is AccountState.ACTIVE else 1)
        return worst

    return anyio.run(main)


def accounts_remove(args: argparse.Namespace, settings: Settings) -> int:
    """Delete accounts from the pool."""

    async def main() -> int:
        await _accounts(settings).remove(list(args.usernames))
        print(f"removed {len(args.usernames)} account(s)")
        return 0

    return anyio.run(main)
