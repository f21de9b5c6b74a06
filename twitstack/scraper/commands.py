"""CLI: `scrape run`, `tweets search|export`, `accounts add|import-cookies|list|check|remove`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from twitstack.core.metrics import new_registry
from twitstack.core.redis import open_redis
from twitstack.scraper.cookies import load_cookie_file
from twitstack.scraper.db import open_database
from twitstack.scraper.health import AccountHealth
from twitstack.scraper.jobs import find_job
from twitstack.scraper.metrics import ScraperMetrics
from twitstack.scraper.service import open_scraper, resolve
from twitstack.scraper.store import TweetStore
from twitstack.scraper.twscrape_adapter import TwscrapeAccounts, configure_twscrape

if TYPE_CHECKING:
    from twitstack.core.config import Settings


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the scraper's subcommands on the `twitstack` parser."""
    scrape = subparsers.add_parser("scrape", help="run scrape jobs by hand")
    scrape_sub = scrape.add_subparsers(dest="scrape_command", required=True, metavar="ACTION")
    run = scrape_sub.add_parser("run", help="run one job now (respecting its lease)")
    run.add_argument("job")
    run.set_defaults(handler=_scrape_run)

    tweets = subparsers.add_parser("tweets", help="query the scraped tweet store")
    tweets_sub = tweets.add_subparsers(dest="tweets_command", required=True, metavar="ACTION")
    search = tweets_sub.add_parser("search", help="find stored tweets")
    search.add_argument("text", nargs="?", help="substring of the tweet text")
    search.add_argument("--author", help="screen name")
    search.add_argument("--job")
    search.add_argument("--since", type=datetime.fromisoformat, help="ISO date-time")
    search.add_argument("--limit", type=int, default=50)
    search.add_argument("--format", choices=("table", "jsonl"), default="table")
    search.set_defaults(handler=_tweets_search)
    export = tweets_sub.add_parser("export", help="export every stored tweet")
    export.add_argument("--format", choices=("jsonl",), default="jsonl")
    export.add_argument("--job")
    export.add_argument("--no-raw", action="store_true", help="leave X's raw JSON out")
    export.add_argument("--output", type=Path, help="file to write (default: stdout)")
    export.set_defaults(handler=_tweets_export)

    accounts = subparsers.add_parser("accounts", help="manage scraping accounts (cookies)")
    acc_sub = accounts.add_subparsers(dest="accounts_command", required=True, metavar="ACTION")
    add = acc_sub.add_parser("add", help="add an account or rotate its cookies")
    add.add_argument("username")
    add.add_argument("cookies", help="auth_token=…; ct0=… (or JSON/base64 export)")
    add.add_argument("--proxy")
    add.set_defaults(handler=_accounts_add)
    imp = acc_sub.add_parser("import-cookies", help="import a cookie JSON file (upsert)")
    imp.add_argument("path", nargs="?", type=Path, help="default: the cookie_path setting")
    imp.add_argument("--username", help="whose cookies, when the file holds one account's")
    imp.set_defaults(handler=_accounts_import)
    acc_sub.add_parser("list", help="state, locks and last error").set_defaults(
        handler=_accounts_list
    )
    check = acc_sub.add_parser("check", help="probe accounts now (costs one request each)")
    check.add_argument("usernames", nargs="*")
    check.set_defaults(handler=_accounts_check)
    remove = acc_sub.add_parser("remove", help="delete accounts")
    remove.add_argument("usernames", nargs="+")
    remove.set_defaults(handler=_accounts_remove)


def _state_dir(settings: Settings) -> Path:
    # The daemon creates it at start; a first `accounts add` may come before any daemon run.
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return settings.state_dir


def _accounts(settings: Settings) -> TwscrapeAccounts:
    _state_dir(settings)
    configure_twscrape(graphql_url=settings.scraper.graphql_url_override)
    return TwscrapeAccounts(resolve(settings.scraper.accounts_db, settings.state_dir))


def _store_path(settings: Settings) -> Path:
    return resolve(settings.scraper.store_db, _state_dir(settings))


def _scrape_run(args: argparse.Namespace, settings: Settings) -> int:
    find_job_name: str = args.job

    async def main() -> int:
        metrics = ScraperMetrics(new_registry())
        async with (
            open_redis(settings.redis_url) as redis,
            open_scraper(settings, redis, settings.state_dir, metrics, holder="cli") as parts,
        ):
            job = find_job(parts.jobs, find_job_name)
            outcome = await parts.runner.run(job)
        print(
            f"{outcome.job}: {outcome.status} run={outcome.run_id} fetched={outcome.fetched} "
            f"new={outcome.new} duplicates={outcome.duplicates} drafts={outcome.drafts}"
            + (f" error={outcome.error_kind}" if outcome.error_kind else "")
        )
        return 0 if outcome.status == "ok" else 1

    return anyio.run(main)


def _tweets_search(args: argparse.Namespace, settings: Settings) -> int:
    async def main() -> int:
        async with open_database(_store_path(settings)) as conn:
            rows = await TweetStore(conn).search(
                text=args.text, author=args.author, job=args.job, since=args.since,
                limit=args.limit,
            )  # fmt: skip
        for row in rows:
            if args.format == "jsonl":
                print(json.dumps(row, ensure_ascii=False))
            else:
                text = " ".join(str(row["text"]).split())[:80]
                print(f"{row['id']}  @{row['author_username']:<16} {row['like_count']:>6}♥  {text}")
        return 0

    return anyio.run(main)


def _tweets_export(args: argparse.Namespace, settings: Settings) -> int:
    async def main() -> int:
        out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
        count = 0
        try:
            async with open_database(_store_path(settings)) as conn:
                async for row in TweetStore(conn).export(job=args.job, with_raw=not args.no_raw):
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    count += 1
        finally:
            if out is not sys.stdout:
                out.close()
        if args.output:
            print(f"exported {count} tweets to {args.output}")
        return 0

    return anyio.run(main)


def _accounts_add(args: argparse.Namespace, settings: Settings) -> int:
    async def main() -> int:
        await _accounts(settings).upsert_cookies(args.username, args.cookies, proxy=args.proxy)
        print(f"account {args.username}: cookies stored, active")
        return 0

    return anyio.run(main)


def _accounts_import(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.path or settings.cookie_path

    async def main() -> int:
        accounts = _accounts(settings)
        pairs = load_cookie_file(path, username=args.username)
        for username, cookies in pairs:
            await accounts.upsert_cookies(username, cookies)
        print(f"imported cookies for {len(pairs)} account(s) from {path}")
        return 0

    return anyio.run(main)


def _health(settings: Settings, accounts: TwscrapeAccounts) -> AccountHealth:
    return AccountHealth(
        accounts,
        ScraperMetrics(new_registry()),
        suspect_window_s=settings.scraper.suspect_error_window_s,
        probe_screen_name=settings.scraper.probe_screen_name,
        scratch_dir=settings.state_dir / "scraper-probes",
    )


def _accounts_list(args: argparse.Namespace, settings: Settings) -> int:
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


def _accounts_check(args: argparse.Namespace, settings: Settings) -> int:
    async def main() -> int:
        accounts = _accounts(settings)
        health = _health(settings, accounts)
        names = args.usernames or [a.username for a in await accounts.list_accounts()]
        worst = 0
        for name in names:
            state = await health.probe(name)
            print(f"{name:<20} {state.value}")
            worst = max(worst, 0 if state.value == "active" else 1)
        return worst

    return anyio.run(main)


def _accounts_remove(args: argparse.Namespace, settings: Settings) -> int:
    async def main() -> int:
        await _accounts(settings).remove(list(args.usernames))
        print(f"removed {len(args.usernames)} account(s)")
        return 0

    return anyio.run(main)
