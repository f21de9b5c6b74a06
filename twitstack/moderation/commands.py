"""CLI subcommands: `twitstack users add|list|passwd|disable|enable|role` and `apikeys`."""

from __future__ import annotations

import argparse

from twitstack.core.commands import lazy_handler
from twitstack.moderation.roles import SCOPES, Role

_ADMIN = "twitstack.moderation.admin_commands"  # argon2 and SQLite load only when used


def _scope_list(value: str) -> str:
    """`--scope read,write`: every comma-separated name must be a known scope."""
    names = [name.strip() for name in value.split(",")]
    unknown = [name for name in names if name not in SCOPES]
    if unknown or not value:
        raise argparse.ArgumentTypeError(
            f"expected scopes from {', '.join(SCOPES)}, found {', '.join(unknown) or 'none'}"
        )
    return ",".join(names)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `users` and `apikeys` with the main parser."""
    roles = [r.label for r in Role]
    users = subparsers.add_parser("users", help="manage moderation users")
    users_sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = users_sub.add_parser("add", help="add a user (password from a prompt or stdin)")
    add.add_argument("username")
    add.add_argument("--role", choices=roles, default="author")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(handler=lazy_handler(_ADMIN, "users_add"))
    users_sub.add_parser("list", help="list users").set_defaults(
        handler=lazy_handler(_ADMIN, "users_list")
    )
    passwd = users_sub.add_parser("passwd", help="set a user's password")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.set_defaults(handler=lazy_handler(_ADMIN, "users_passwd"))
    for name in ("disable", "enable"):
        cmd = users_sub.add_parser(name, help=f"{name} a user")
        cmd.add_argument("username")
        cmd.set_defaults(handler=lazy_handler(_ADMIN, f"users_{name}"))
    role = users_sub.add_parser("role", help="change a user's role")
    role.add_argument("username")
    role.add_argument("role", choices=roles)
    role.set_defaults(handler=lazy_handler(_ADMIN, "users_role"))

    keys = subparsers.add_parser("apikeys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="apikeys_command", required=True, metavar="ACTION")
    create = keys_sub.add_parser("create", help="create a key; prints it once")
    create.add_argument("name")
    create.add_argument("--owner", required=True, help="username the key acts as")
    create.add_argument(
        "--scope", dest="scopes", action="append", default=[], type=_scope_list,
        metavar="{" + ",".join(SCOPES) + "}[,...]", help="repeat it, or list several: read,write",
    )  # fmt: skip
    create.set_defaults(handler=lazy_handler(_ADMIN, "apikeys_create"))
    keys_sub.add_parser("list", help="list keys").set_defaults(
        handler=lazy_handler(_ADMIN, "apikeys_list")
    )
    revoke = keys_sub.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id", type=int)
    revoke.set_defaults(handler=lazy_handler(_ADMIN, "apikeys_revoke"))
