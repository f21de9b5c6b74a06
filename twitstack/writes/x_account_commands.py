"""CLI: `x-accounts connect|list|disconnect`, the X accounts the writer posts as.

Not to be confused with `twitstack accounts`, the scraper's pool of cookie logins. Parsers only;
the handlers (`x_account_cli`) load when a command runs.
"""

from __future__ import annotations

import argparse

from twitstack.core.commands import lazy_handler
from twitstack.writes.x_connect import SCOPE_GROUPS

_CLI = "twitstack.writes.x_account_cli"
_EPILOG = (
    "These are the X accounts the WRITER posts and sends DMs as (OAuth 2.0, connected with "
    "PKCE, tokens sealed in Redis). The scraper's cookie logins are `twitstack accounts`."
)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twitstack x-accounts ...`."""
    group = subparsers.add_parser(
        "x-accounts",
        help="X accounts the writer posts as: connect (OAuth 2.0 + PKCE), list, disconnect",
        description="Connect, list and disconnect the X accounts the writer posts as.",
        epilog=_EPILOG,
    )
    actions = group.add_subparsers(dest="x_accounts_command", required=True, metavar="ACTION")
    connect = actions.add_parser(
        "connect",
        help="sign in to X as an account and store its tokens (also reconnects one)",
        description="Print X's authorize URL; after consenting, paste the URL your browser "
        "was sent to (or use --listen on a host with a browser).",
        epilog=_EPILOG,
    )
    connect.add_argument("name", help="short label requests use as `account` (e.g. brand)")
    connect.add_argument(
        "--scope", action="append", choices=sorted(SCOPE_GROUPS), default=None,
        help="what the account may do (repeatable; default: posting). tweet.read, users.read "
        "and offline.access are always asked for",
    )  # fmt: skip
    connect.add_argument(
        "--listen", type=int, metavar="PORT",
        help="receive X's redirect on http://127.0.0.1:PORT/callback (must be registered as a "
        "callback URL of the X app) instead of pasting it",
    )  # fmt: skip
    connect.add_argument(
        "--redirect-uri", help="override writer.oauth2_redirect_uri for this sign-in"
    )
    connect.set_defaults(handler=lazy_handler(_CLI, "connect"))
    listing = actions.add_parser(
        "list", help="handle, user id, auth kind, scopes, token expiry, last refresh",
        epilog=_EPILOG,
    )  # fmt: skip
    listing.set_defaults(handler=lazy_handler(_CLI, "list_accounts"))
    disconnect = actions.add_parser(
        "disconnect", help="revoke the account's tokens at X and remove them", epilog=_EPILOG
    )
    disconnect.add_argument("account", help="label, @handle or X user id")
    disconnect.set_defaults(handler=lazy_handler(_CLI, "disconnect"))
