"""Least-privilege Redis users for twitstack's roles, as a Redis 7 ACL file (`twitstack redis-acl`).

Each role gets the commands it uses and only the keys it uses (`%R~` read, `%W~` write, `~` both).
Scripts run with the caller's permissions in Redis 7, so EVAL does not widen them: a script's
`redis.call` on a key or command outside the user's rules fails like the command itself would.
`deploy/redis/users.acl` is `twitstack redis-acl --template`; a test keeps the two equal.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twitstack.core.redis_access import AccessNeeds, CommandNeed, KeyNeed
from twitstack.writes import keys

if TYPE_CHECKING:
    from twitstack.core.config import Settings

EXIT_OK = 0
# The scraper's job leases (`twitstack.scraper.lease.lease_key`); kept literal so the shared
# domain does not import a service. tests/ops/test_redis_acl.py checks they agree.
SCRAPER_PATTERN = "twitstack:scraper:*"
_WRITER_STATE = keys.WRITER_PREFIX
# Spend caps raised for a day or month and their audit (twitstack.writes.spend): admins raise
# them from the UI (moderation) or the CLI; every writer reads them in its reservation.
_SPEND_CAPS = ("~twitstack:budget:*",)
# What the daemons' shared connection needs besides their own commands: PING to wait for
# Redis, INFO for the `redis.connected` start-up line.
_DAEMON = ("+ping", "+info")
# Data commands of every type, scripts and MULTI; minus what can wipe, reconfigure or spy on
# the server (FLUSHALL, KEYS, CONFIG, DEBUG, MONITOR, SHUTDOWN, …), and Redis functions, which
# twitstack does not use and which would outlive the caller.
_SERVICE_COMMANDS = (
    "+@read", "+@write", "+@keyspace", "+@scripting", "+@transaction", "+@connection",
    "-@dangerous", "-@admin", "-@pubsub",
    "-function", "-fcall", "-fcall_ro", "-script|flush", "-script|kill",
)  # fmt: skip
# The budget scripts read the server's clock (TIME, outside the categories above): the in-flight
# count's lapse (`pending.until`) runs on it, whatever a replica's own clock says.
_WRITER_COMMANDS_EXTRA = ("+time",)
# Everything the writer touches: the queue and its bookkeeping, the ledger (every key under
# writes:, tombstones included), its account state and the sealed credentials.
_WRITER_KEYS = (
    f"~{keys.WRITE_QUEUE}",
    f"~{keys.WRITE_QUEUE}:*",
    "~writes:*",
    f"~{_WRITER_STATE}:*",
    f"~{keys.SECRET_PREFIX}:*",
    f"~{keys.X_ACCOUNTS_PREFIX}:*",
    *_SPEND_CAPS,
)
# Connecting X accounts from the UI (twitstack.writes.x_connect): the records, the pending
# sign-ins, the audit stream, the sealed pairs it installs (and reads back to revoke them at X
# on disconnect), and the public token hash it resets. The refresh lock shares that pattern.
_CONNECT_ACCOUNTS = (
    f"~{keys.X_ACCOUNTS_PREFIX}:*",
    f"~{keys.SECRET_PREFIX}:oauth2:*",
    f"~{_WRITER_STATE}:token:*",
)
# The writer's per-account state that moderation's accounts page and ops may read: budgets,
# pauses, token expiry and the spend ledger (rl:* covers the budget hashes and the old layout's
# window and in-flight keys); never the sealed tokens under keys.SECRET_PREFIX.
_ACCOUNT_STATE_READ = (
    f"%R~{_WRITER_STATE}:rl:*",
    f"%R~{_WRITER_STATE}:paused:*",
    f"%R~{_WRITER_STATE}:token:*",
    f"%R~{_WRITER_STATE}:spend:*",
)


# The notifier (twitstack.notifier): its own keys; it reads the ledger, its events, the dead
# letters and the accounts' reconnect marks, and writes nothing of theirs but the quarantine.
_NOTIFIER_KEYS = (
    f"~{keys.NOTIFY_PREFIX}:*",
    "%R~writes:*",
    f"~{keys.QUARANTINE}",
    f"~{keys.QUARANTINED_REFS}",
    f"%R~{keys.DEAD_LETTER}",
    f"%R~{_WRITER_STATE}:token:*",
    f"%R~{keys.X_ACCOUNTS}",
)


@dataclass(frozen=True)
class AclRole:
    """One Redis user: who uses it, and its ACL rules (after `reset`-style defaults)."""

    user: str
    used_by: str
    rules: tuple[str, ...]

    def line(self, password: str) -> str:
        """The ACL file line, with `password` in clear (Redis stores only its SHA-256)."""
        base = ("on", f">{password}", "resetkeys", "resetchannels", "-@all")
        return " ".join(("user", self.user, *base, *self.rules))


ROLES: tuple[AclRole, ...] = (
    AclRole(
        "twitstack-producer",
        "producers outside twitstack and `twitstack enqueue`: RPUSH onto write_queue, nothing else",
        ("+rpush", "+ping", f"%W~{keys.WRITE_QUEUE}"),
    ),
    AclRole(
        "twitstack-writer",
        "`twitstack run --only writer` (every replica), `twitstack writer status|resume`",
        (
            *_SERVICE_COMMANDS,
            *_DAEMON,
            *_WRITER_COMMANDS_EXTRA,
            *_WRITER_KEYS,
        ),
    ),
    AclRole(
        "twitstack-daemon",
        "`twitstack run` with every service in one process (one shared pool, so one user: "
        "the writer's rights plus the scraper's leases and the notifier's keys)",
        (
            *_SERVICE_COMMANDS,
            *_DAEMON,
            *_WRITER_COMMANDS_EXTRA,
            *_WRITER_KEYS,
            f"~{SCRAPER_PATTERN}",
            f"~{keys.NOTIFY_PREFIX}:*",
        ),
    ),
    AclRole(
        "twitstack-moderation",
        "`twitstack run --only moderation`: the ledger, approvals onto write_queue, dead letters",
        (
            *_SERVICE_COMMANDS,
            *_DAEMON,
            # The Accounts page reads Redis's clock once per render: the in-flight count's
            # lapse (`pending.until`) is stamped on it (TIME is in no category above).
            "+time",
            f"~{keys.WRITE_QUEUE}",
            f"%R~{keys.WRITE_QUEUE}:*",
            f"~{keys.DEAD_LETTER}",
            "~writes:*",
            *_ACCOUNT_STATE_READ,
            *_CONNECT_ACCOUNTS,
            *_SPEND_CAPS,
            # Raising a cap writes its field into the period's spend rollup (the writer's check
            # reads it there); no more power than raising caps gave.
            f"~{_WRITER_STATE}:spend:*",
        ),
    ),
    AclRole(
        "twitstack-scraper",
        "`twitstack run --only scraper`, `twitstack scrape run`: job leases, drafts onto "
        "write_queue",
        (
            "+get",
            "+set",
            "+del",
            "+pexpire",
            "+eval",
            "+rpush",
            "+multi",
            "+exec",
            "+discard",
            *_DAEMON,
            f"%W~{keys.WRITE_QUEUE}",
            f"~{SCRAPER_PATTERN}",
        ),
    ),
    AclRole(
        "twitstack-notifier",
        "`twitstack run --only notifier`: reads the ledger and its events, sends notifications",
        (*_SERVICE_COMMANDS, *_DAEMON, *_NOTIFIER_KEYS),
    ),
    AclRole(
        "twitstack-ops",
        "`twitstack queue stats`, `twitstack dlq list`, dashboards: read-only",
        (
            "+@read",
            "-@dangerous",
            *_DAEMON,
            f"%R~{keys.WRITE_QUEUE}",
            f"%R~{keys.WRITE_QUEUE}:*",
            "%R~writes:*",
            *_ACCOUNT_STATE_READ,
            f"%R~{keys.X_ACCOUNTS}",
            f"%R~{keys.X_ACCOUNTS_AUDIT}",
            f"%R~{keys.NOTIFY_PREFIX}:*",
            "%R~twitstack:budget:*",
        ),
    ),
)
# Operators' full access (backups, `dlq retry|purge`, `doctor`'s CONFIG GET, migrations).
ADMIN_USER = "twitstack-admin"
_ADMIN_RULES = ("~*", "&*", "+@all")


# The role whose keys each service `twitstack run --only` starts needs (run together, the
# services need the union, which `twitstack-daemon` grants).
SERVICE_ROLES = {
    "writer": "twitstack-writer",
    "moderation": "twitstack-moderation",
    "scraper": "twitstack-scraper",
    "notifier": "twitstack-notifier",
}
_K = "{key}"
# Every command the writer runs, directly or from its Lua scripts, with arguments to queue it
# with (never run: see twitstack.core.redis_access). EXEC cannot be queued; MULTI is the probe.
_WRITER_COMMANDS = (
    ("ping",), ("info", "server"), ("time",), ("scan", "0"),
    ("eval", "return 1", "1", _K), ("evalsha", "0" * 40, "1", _K), ("script", "load", "return 1"),
    ("get", _K), ("set", _K, "v"), ("getdel", _K), ("mget", _K), ("del", _K), ("exists", _K),
    ("type", _K), ("expire", _K, "1"), ("pexpire", _K, "1"), ("pttl", _K), ("rename", _K, _K),
    ("hget", _K, "f"), ("hmget", _K, "f"), ("hgetall", _K), ("hexists", _K, "f"),
    ("hset", _K, "f", "v"), ("hsetnx", _K, "f", "v"), ("hdel", _K, "f"), ("hincrby", _K, "f", "1"),
    ("zadd", _K, "0", "m"), ("zrem", _K, "m"), ("zrange", _K, "0", "-1"), ("zcard", _K),
    ("zrangebyscore", _K, "-inf", "+inf"), ("zscore", _K, "m"),
    ("rpush", _K, "v"), ("lpush", _K, "v"), ("lrem", _K, "0", "v"), ("ltrim", _K, "0", "-1"),
    ("lrange", _K, "0", "-1"), ("llen", _K), ("blmove", _K, _K, "LEFT", "RIGHT", "1"),
    ("sadd", _K, "m"), ("srem", _K, "m"), ("smembers", _K), ("smismember", _K, "m"),
    ("xadd", _K, "*", "f", "v"), ("xrange", _K, "-", "+"), ("xrevrange", _K, "+", "-"),
    ("xread", "STREAMS", _K, "0"),
)  # fmt: skip


# How to queue the single commands a role may be granted (MULTI, EXEC, DISCARD: the probe).
_SINGLE_COMMANDS = {
    "ping": ("ping",), "info": ("info", "server"), "eval": ("eval", "return 1", "0"),
    "get": ("get", _K), "set": ("set", _K, "v"), "del": ("del", _K),
    "pexpire": ("pexpire", _K, "1"), "rpush": ("rpush", _K, "v"),
}  # fmt: skip


def _command_need(args: tuple[str, ...]) -> CommandNeed:
    name = f"{args[0]}|{args[1]}" if args[0] == "script" else args[0]
    return CommandNeed(name, tuple(arg.upper() if i == 0 else arg for i, arg in enumerate(args)))


def _role(user: str) -> AclRole:
    return next(role for role in ROLES if role.user == user)


def _key_needs(role: AclRole) -> list[KeyNeed]:
    needs = []
    for rule in role.rules:
        access, tilde, pattern = rule.partition("~")
        if tilde and access in ("", "%R", "%W", "%RW"):
            read, write = access in ("", "%R", "%RW"), access in ("", "%W", "%RW")
            needs.append(KeyNeed(pattern, read=read, write=write))
    return needs


def _commands_of(role: AclRole, service: str) -> list[CommandNeed]:
    if service == "writer":
        return [_command_need(args) for args in _WRITER_COMMANDS]
    # A role granted single commands (the scraper's) needs each of them; roles granted
    # categories are probed for their keys, PING and INFO (their commands are not listed).
    single = [rule[1:] for rule in role.rules if rule.startswith("+") and "@" not in rule]
    found = [_SINGLE_COMMANDS[name] for name in single if name in _SINGLE_COMMANDS]
    return [_command_need(args) for args in found or [("ping",), ("info", "server")]]


def service_access_needs(services: list[str]) -> AccessNeeds:
    """What the ACL recipe grants `services` and they need: their keys and commands."""
    key_needs: dict[str, KeyNeed] = {}
    commands: dict[str, CommandNeed] = {}
    for service in services:
        role = _role(SERVICE_ROLES[service])
        for need in _key_needs(role):
            seen = key_needs.get(need.pattern)
            if seen is not None:
                need = KeyNeed(need.pattern, seen.read or need.read, seen.write or need.write)
            key_needs[need.pattern] = need
        for command in _commands_of(role, service):
            commands.setdefault(command.name, command)
    # Commands are probed on a key the user may read and write (a pattern's, not a real key).
    both = next(n for n in key_needs.values() if n.read and n.write and "*" in n.pattern)
    return AccessNeeds(tuple(key_needs.values()), tuple(commands.values()), both.probe_key)


def placeholder(user: str) -> str:
    """The template's stand-in for `user`'s password (replace it before loading the file)."""
    return f"REPLACE-{user.upper()}-PASSWORD"


def render_acl(passwords: dict[str, str]) -> str:
    """The ACL file: the default user off, every role, and the admin user."""
    lines = ["user default off resetkeys resetchannels -@all"]
    lines += [role.line(passwords[role.user]) for role in ROLES]
    admin = ("on", f">{passwords[ADMIN_USER]}", *_ADMIN_RULES)
    lines.append(" ".join(("user", ADMIN_USER, *admin)))
    return "\n".join(lines) + "\n"


def all_users() -> list[str]:
    return [role.user for role in ROLES] + [ADMIN_USER]


def redis_acl_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the ACL (stdout) and the URL each role's process uses (stderr)."""
    users = all_users()
    if args.template:
        sys.stdout.write(render_acl({user: placeholder(user) for user in users}))
        return EXIT_OK
    passwords = {user: secrets.token_urlsafe(32) for user in users}
    sys.stdout.write(render_acl(passwords))
    # The passwords are new (never read from anywhere), shown once for the operator to store.
    for role in ROLES:
        url = f"redis://{role.user}:{passwords[role.user]}@{args.host}/0"
        print(f"{role.user} ({role.used_by}): {url}", file=sys.stderr)
    print(f"{ADMIN_USER} (operators only): password {passwords[ADMIN_USER]}", file=sys.stderr)
    return EXIT_OK
