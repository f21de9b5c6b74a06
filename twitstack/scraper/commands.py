"""CLI: `scrape run`, `tweets search|export`, `accounts add|import-cookies|list|check|remove`.

Only the parsers live here: every command module is imported to build `twitstack --help`, so
the handlers (and twscrape, aiosqlite, aioboto3 behind them) load only when their command runs.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from twitstack.core.commands import lazy_handler

_TWEETS = "twitstack.scraper.tweet_commands"
_ACCOUNTS = "twitstack.scraper.account_commands"


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the scraper's subcommands on the `twitstack` parser."""
    scrape = subparsers.add_parser("scrape", help="run scrape jobs by hand")
    scrape_sub = scrape.add_subparsers(dest="scrape_command", required=True, metavar="ACTION")
    run = scrape_sub.add_parser("run", help="run one job now (respecting its lease)")
    run.add_argument("job")
    run.set_defaults(handler=lazy_handler(_TWEETS, "scrape_run"))
    _add_tweets(subparsers)
    _add_accounts(subparsers)


def _add_tweets(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tweets = subparsers.add_parser("tweets", help="query the scraped tweet store")
    tweets_sub = tweets.add_subparsers(dest="tweets_command", required=True, metavar="ACTION")
    search = tweets_sub.add_parser("search", help="find stored tweets")
    search.add_argument("text", nargs="?", help="substring of the tweet text")
    search.add_argument("--author", help="screen name")
    search.add_argument("--job")
    search.add_argument("--since", type=datetime.fromisoformat, help="ISO date-time")
    search.add_argument("--limit", type=int, default=50)
    search.add_argument("--format", choices=("table", "jsonl"), default="table")
    search.set_defaults(handler=lazy_handler(_TWEETS, "tweets_search"))
    export = tweets_sub.add_parser("export", help="export every stored tweet")
    export.add_argument("--format", choices=("jsonl",), default="jsonl")
    export.add_argument("--job")
    export.add_argument("--no-raw", action="store_true", help="leave X's raw JSON out")
    export.add_argument("--output", type=Path, help="file to write (default: stdout)")
    export.set_defaults(handler=lazy_handler(_TWEETS, "tweets_export"))


def _add_accounts(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    accounts = subparsers.add_parser(
        "accounts",
        help="the scraper's cookie logins (X accounts the writer posts as: x-accounts)",
    )
    acc_sub = accounts.add_subparsers(dest="accounts_command", required=True, metavar="ACTION")
    add = acc_sub.add_parser("add", help="add an account or rotate its cookies")
    add.add_argument("username")
    add.add_argument("cookies", help="auth_token=…; ct0=… (or JSON/base64 export)")
    add.add_argument("--proxy")
    add.set_defaults(handler=lazy_handler(_ACCOUNTS, "accounts_add"))
    imp = acc_sub.add_parser("import-cookies", help="import a cookie JSON file (upsert)")
    imp.add_argument("path", nargs="?", type=Path, help="default: the cookie_path setting")
    imp.add_argument("--username", help="whose cookies, when the file holds one account's")
    imp.set_defaults(handler=lazy_handler(_ACCOUNTS, "accounts_import"))
    listing = acc_sub.add_parser("list", help="state, locks and last error")
    listing.set_defaults(handler=lazy_handler(_ACCOUNTS, "accounts_list"))
    check = acc_sub.add_parser("check", help="probe accounts now (costs one request each)")
    check.add_argument("usernames", nargs="*")
    check.set_defaults(handler=lazy_handler(_ACCOUNTS, "accounts_check"))
    remove = acc_sub.add_parser("remove", help="delete accounts")
    remove.add_argument("usernames", nargs="+")
    remove.set_defaults(handler=lazy_handler(_ACCOUNTS, "accounts_remove"))
