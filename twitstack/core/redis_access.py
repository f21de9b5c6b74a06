"""What a service's Redis user may do, checked before the service starts.

A Redis ACL user that lacks a key pattern or a command (an ACL file older than the release:
an upgrade that adds keys needs the new file) answers NOPERM, which is no outage: retrying
never helps. So at start each service's needs are probed in one MULTI that is then
discarded: Redis checks a queued command's ACL permissions when it queues it and answers
QUEUED or NOPERM, and DISCARD drops the queue, so nothing is read or written. (ACL DRYRUN
would answer the same, but it is an admin command no service user may run.)

Scripts run with the caller's permissions, so probing the commands a script calls on keys of
the script's patterns covers the script too.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import NoPermissionError, ResponseError

from twitstack.core.errors import StartupError

# Where the fix is: the command printing the ACL file and the section describing it.
ACL_RECIPE = "`twitstack redis-acl` prints the ACL file to load (docs/operations.md, Redis users)"
# A key name no service ever uses, put where a pattern's `*` is.
PROBE_NAME = "acl-probe"
# Redis 7.0's script refusals are ERR replies, not NOPERM.
_SCRIPT_REFUSALS = ("user executing the script can't", "no permissions")


@dataclass(frozen=True)
class KeyNeed:
    """A key pattern (as written in the ACL, without `~`) and whether the service reads or
    writes keys matching it."""

    pattern: str
    read: bool
    write: bool

    @property
    def probe_key(self) -> str:
        return self.pattern.replace("*", PROBE_NAME)


@dataclass(frozen=True)
class CommandNeed:
    """A command the service runs (lower-case, `script|load` for a subcommand), with
    arguments to queue it with; `{key}` stands for a key the service may write."""

    name: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class AccessNeeds:
    """What one or more services need; `command_key` is a key their user may read and write,
    on which the commands are probed."""

    keys: tuple[KeyNeed, ...]
    commands: tuple[CommandNeed, ...]
    command_key: str


class RedisPermissionError(StartupError):
    """The service's Redis user may not do something the service needs."""


def is_permission_error(exc: BaseException) -> bool:
    """Whether Redis refused a command for the user's ACL (never an outage)."""
    if isinstance(exc, NoPermissionError):
        return True
    text = str(exc)
    return isinstance(exc, ResponseError) and (
        text.startswith("NOPERM") or any(refusal in text for refusal in _SCRIPT_REFUSALS)
    )


def redis_user(redis: Redis) -> str:
    """The ACL user `redis` logs in as (`default` when the URL names none)."""
    username = redis.connection_pool.connection_kwargs.get("username")
    return str(username) if username else "default"


async def missing_permissions(redis: Redis, needs: AccessNeeds) -> list[str]:
    """One line per thing `needs` asks for that Redis refuses this user; [] when none."""
    probes: list[tuple[str, tuple[str, ...]]] = []
    for need in needs.keys:
        if need.read:
            probes.append((f"read keys {need.pattern}", ("GET", need.probe_key)))
        if need.write:
            probes.append((f"write keys {need.pattern}", ("DEL", need.probe_key)))
    for command in needs.commands:
        args = tuple(arg.replace("{key}", needs.command_key) for arg in command.args)
        probes.append((f"run {command.name.upper()}", args))
    refused = await _queue_and_discard(redis, [args for _, args in probes])
    user = redis_user(redis)
    if refused is None:
        return [f"Redis user {user} may not run MULTI (it probes the others); {ACL_RECIPE}"]
    lines: list[str] = []
    for (what, _args), error in zip(probes, refused, strict=True):
        # A command probe refused for its key repeats a key line: only the key is missing.
        if error is None or (what.startswith("run ") and "keys" in error):
            continue
        lines.append(f"Redis user {user} may not {what} ({error}); {ACL_RECIPE}")
    return lines


async def check_access(redis: Redis, needs: AccessNeeds, *, who: str) -> None:
    """Raise RedisPermissionError, one line per missing permission, if `needs` is not met."""
    lines = await missing_permissions(redis, needs)
    if lines:
        raise RedisPermissionError("\n".join(f"{who}: {line}" for line in lines))


async def _queue_and_discard(
    redis: Redis, commands: list[tuple[str, ...]]
) -> list[str | None] | None:
    """Queue `commands` in a MULTI and DISCARD it: each command's refusal (None: queued), or
    None when MULTI itself is refused."""
    pool = redis.connection_pool
    connection: Connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    inside = False
    try:
        await connection.send_command("MULTI")
        try:
            await connection.read_response()
        except NoPermissionError:
            return None
        inside = True
        refused: list[str | None] = []
        for args in commands:
            await connection.send_command(*args)
            try:
                await connection.read_response()
            except ResponseError as exc:
                refused.append(str(exc))
            else:
                refused.append(None)
        await connection.send_command("DISCARD")
        await connection.read_response()
        inside = False
        return refused
    finally:
        if inside:
            # A connection left inside a MULTI must never serve another command.
            await connection.disconnect()
        await pool.release(connection)
