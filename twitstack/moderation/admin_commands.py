"""What `twitstack users ...` and `twitstack apikeys ...` do (registered in commands.py)."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Awaitable, Callable

import anyio

from twitstack.core.config import Settings
from twitstack.moderation.apikeys import ApiKeyError, ApiKeyStore
from twitstack.moderation.audit import AuditLog
from twitstack.moderation.db import Database, open_database
from twitstack.moderation.passwords import PasswordPolicyError, PasswordService
from twitstack.moderation.roles import Role
from twitstack.moderation.users import UserError, UserStore

EXIT_OK, EXIT_FAILURE = 0, 1
_ACTOR = "cli"


def _read_password(args: argparse.Namespace) -> str:
    # Never from argv: it would land in shell history and `ps`.
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise UserError("the two passwords differ")
    return first


def _with_db(settings: Settings, work: Callable[[Database], Awaitable[int]]) -> int:
    async def main() -> int:
        data_dir = settings.state_dir
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        async with open_database(data_dir / settings.moderation.db_filename) as db:
            return await work(db)

    try:
        return anyio.run(main)
    except (UserError, PasswordPolicyError, ApiKeyError, ValueError) as exc:
        print(f"twitstack: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _stores(db: Database) -> tuple[UserStore, AuditLog]:
    return UserStore(db, PasswordService(), time.time), AuditLog(db, time.time)


async def _require_user(users: UserStore, name: str) -> int:
    user = await users.by_name(name)
    if user is None:
        raise UserError(f"no user named {name!r}")
    return user.id


def users_add(args: argparse.Namespace, settings: Settings) -> int:
    password = _read_password(args)

    async def work(db: Database) -> int:
        users, audit = _stores(db)
        user = await users.create(args.username, password, Role.parse(args.role))
        await audit.record(_ACTOR, "user.create", user.username, {"role": user.role.label})
        print(f"added {user.username} ({user.role.label})")
        return EXIT_OK

    return _with_db(settings, work)


def users_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> int:
        users, _ = _stores(db)
        for user in await users.list():
            status = "disabled" if user.disabled else "active"
            print(f"{user.username:<24} {user.role.label:<10} {status}")
        return EXIT_OK

    return _with_db(settings, work)


def users_passwd(args: argparse.Namespace, settings: Settings) -> int:
    password = _read_password(args)

    async def work(db: Database) -> int:
        users, audit = _stores(db)
        await users.set_password(await _require_user(users, args.username), password)
        await audit.record(_ACTOR, "user.password_reset", args.username)
        print(f"password of {args.username} changed; their sessions ended")
        return EXIT_OK

    return _with_db(settings, work)


def _set_disabled(args: argparse.Namespace, settings: Settings, disabled: bool) -> int:
    async def work(db: Database) -> int:
        users, audit = _stores(db)
        await users.set_disabled(await _require_user(users, args.username), disabled)
        action = "user.disable" if disabled else "user.enable"
        await audit.record(_ACTOR, action, args.username)
        print(f"{args.username} {'disabled' if disabled else 'enabled'}")
        return EXIT_OK

    return _with_db(settings, work)


def users_disable(args: argparse.Namespace, settings: Settings) -> int:
    return _set_disabled(args, settings, True)


def users_enable(args: argparse.Namespace, settings: Settings) -> int:
    return _set_disabled(args, settings, False)


def users_role(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> int:
        users, audit = _stores(db)
        role = Role.parse(args.role)
        await users.set_role(await _require_user(users, args.username), role)
        await audit.record(_ACTOR, "user.role", args.username, {"to": role.label})
        print(f"{args.username} is now {role.label}")
        return EXIT_OK

    return _with_db(settings, work)


def apikeys_create(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> int:
        users, audit = _stores(db)
        owner = await _require_user(users, args.owner)
        scopes = [s for part in args.scopes for s in part.split(",")]
        plaintext, key = await ApiKeyStore(db, time.time).create(owner, args.name, scopes)
        await audit.record(
            _ACTOR, "apikey.create", f"{key.name} (tsk_{key.prefix})", {"owner": args.owner}
        )
        # The only time the key is shown: stdout, so it can be captured by a script.
        print(plaintext)
        print(f"created key {key.id} for {args.owner} ({' '.join(key.scopes)})", file=sys.stderr)
        return EXIT_OK

    return _with_db(settings, work)


def apikeys_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> int:
        users, _ = _stores(db)
        names = {u.id: u.username for u in await users.list()}
        for key in await ApiKeyStore(db, time.time).list():
            status = "active" if key.active else "revoked"
            owner = names.get(key.owner_id, "?")
            print(
                f"{key.id:<5} tsk_{key.prefix}_…  {key.name:<20} {owner:<16}"
                f" {','.join(key.scopes):<20} {status}"
            )
        return EXIT_OK

    return _with_db(settings, work)


def apikeys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> int:
        store = ApiKeyStore(db, time.time)
        key = await store.get(args.key_id)
        if key is None:
            raise ApiKeyError(f"no API key with id {args.key_id}")
        if await store.revoke(key.id):
            await AuditLog(db, time.time).record(
                _ACTOR, "apikey.revoke", f"{key.name} (tsk_{key.prefix})"
            )
        print(f"key {key.id} revoked")
        return EXIT_OK

    return _with_db(settings, work)
