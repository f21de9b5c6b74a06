"""`twitstack notify`: the notifier's outbox and dead letters, from the command line."""

from __future__ import annotations

import argparse

from twitstack.core.commands import lazy_handler

_HANDLERS = "twitstack.notifier.dead_commands"


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twitstack notify status` and `twitstack notify dead list|retry`."""
    notify = subparsers.add_parser("notify", help="the notifier's outbox and dead letters")
    actions = notify.add_subparsers(dest="notify_command", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="deliveries waiting, dead letters, cursor")
    status.set_defaults(handler=lazy_handler(_HANDLERS, "status_command"))
    dead = actions.add_parser("dead", help="notifications that gave up after max_attempts")
    dead_actions = dead.add_subparsers(dest="dead_command", required=True, metavar="ACTION")
    listing = dead_actions.add_parser("list", help="newest first, with channel and error")
    listing.add_argument("--limit", type=int, default=50, metavar="N")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=lazy_handler(_HANDLERS, "dead_list_command"))
    retry = dead_actions.add_parser("retry", help="put dead letters back in the outbox")
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", metavar="ID", help="a delivery id from `dead list`")
    target.add_argument("--all", action="store_true", help="every dead letter")
    retry.set_defaults(handler=lazy_handler(_HANDLERS, "dead_retry_command"))
