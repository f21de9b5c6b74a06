"""CLI: `twitstack redis-acl`, the least-privilege Redis users (recipe in `ops.redis_acl`)."""

from __future__ import annotations

import argparse

from twitstack.core.commands import lazy_handler


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twitstack redis-acl`."""
    command = subparsers.add_parser(
        "redis-acl",
        help="print a Redis ACL file with one least-privilege user per role",
        description="Print a Redis 7 ACL file (aclfile) with new random passwords on stdout, "
        "and each role's redis_url on stderr. Nothing is read from Redis or the settings' "
        "secrets.",
    )
    command.add_argument(
        "--template",
        action="store_true",
        help="print placeholders instead of passwords (as deploy/redis/users.acl)",
    )
    command.add_argument(
        "--host", default="HOST:6379", help="host:port for the redis_url lines (default HOST:6379)"
    )
    command.set_defaults(handler=lazy_handler("twitstack.ops.redis_acl", "redis_acl_command"))
