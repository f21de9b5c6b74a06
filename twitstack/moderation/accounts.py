"""X account status as the writer reports it in Redis: rate-limit budgets, pauses, token expiry.

The key shapes mirror the writer's (`twitstack:writer:rl:<account>:<endpoint>:<window>` hashes,
`...:rl:<account>:<endpoint>:pending` counters of requests in flight, `...:paused:<account>`,
`...:token:<account>`); only `expires_at` is ever read from a token hash. They are mirrored
because `twitstack.writes.keys` does not name them yet and services never import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from twitstack.writes.ledger_types import as_text

WRITER_PREFIX = "twitstack:writer"
# The rate-limit "window" that is not a window: a string counting reservations in flight.
PENDING_WINDOW = "pending"
_SCAN_LIMIT = 10_000


@dataclass(frozen=True)
class Budget:
    endpoint: str
    window: str
    limit: int | None
    remaining: int | None
    reset: float | None


@dataclass
class AccountStatus:
    """What the writer last reported about one account."""

    name: str
    budgets: list[Budget] = field(default_factory=list)
    paused_reason: str | None = None
    paused_until: float | None = None
    token_expires_at: float | None = None
    # Endpoint -> requests the writer has reserved budget for and not yet heard back about.
    in_flight: dict[str, int] = field(default_factory=dict)


def _num(value: bytes | str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(as_text(value))
    except ValueError:
        return None


async def account_statuses(redis: Redis, known: list[str]) -> list[AccountStatus]:
    """Status of every account that is configured or that the writer has written keys for."""
    accounts: dict[str, AccountStatus] = {name: AccountStatus(name) for name in known}

    def account(name: str) -> AccountStatus:
        return accounts.setdefault(name, AccountStatus(name))

    scanned = 0
    async for raw_key in redis.scan_iter(match=f"{WRITER_PREFIX}:*", count=500):
        scanned += 1
        if scanned > _SCAN_LIMIT:
            break
        key = as_text(raw_key)
        parts = key[len(WRITER_PREFIX) + 1 :].split(":")
        try:
            await _read_key(redis, key, parts, account)
        except ResponseError:
            # A key of another shape than we expect (WRONGTYPE): the page must still render.
            continue
    for status in accounts.values():
        status.budgets.sort(key=lambda b: (b.endpoint, b.window))
    return sorted(accounts.values(), key=lambda s: s.name)


async def _read_key(
    redis: Redis, key: str, parts: list[str], account: Callable[[str], AccountStatus]
) -> None:
    if parts[0] == "rl" and len(parts) == 4 and parts[3] == PENDING_WINDOW:
        count = _num(await redis.get(key))
        if count:
            account(parts[1]).in_flight[parts[2]] = int(count)
    elif parts[0] == "rl" and len(parts) == 4:
        fields = await redis.hmget(key, ["limit", "remaining", "reset"])
        limit, remaining, reset = (_num(v) for v in fields)
        account(parts[1]).budgets.append(
            Budget(
                endpoint=parts[2],
                window=parts[3],
                limit=None if limit is None else int(limit),
                remaining=None if remaining is None else int(remaining),
                reset=reset,
            )
        )
    elif parts[0] == "paused" and len(parts) == 2:
        reason, until = await redis.hmget(key, ["reason", "until"])
        status = account(parts[1])
        status.paused_reason = as_text(reason) if reason is not None else "paused"
        status.paused_until = _num(until)
    elif parts[0] == "token" and len(parts) == 2:
        # HGET of one field: the access and refresh tokens never leave Redis.
        account(parts[1]).token_expires_at = _num(await redis.hget(key, "expires_at"))
