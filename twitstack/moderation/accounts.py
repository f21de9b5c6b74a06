"""X account status as the writer reports it in Redis: rate-limit budgets, pauses, token expiry.

The key shapes are `twitstack.writes.keys`' (rate-limit windows, in-flight counters, pauses,
tokens), shared with the writer; only `expires_at` is ever read from a token hash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from twitstack.core.logging import get_logger
from twitstack.core.redis_access import ACL_RECIPE, is_permission_error, redis_user
from twitstack.writes import keys
from twitstack.writes.keys import WriterKey
from twitstack.writes.ledger_types import as_text
from twitstack.writes.quarantine import is_data_error

_SCAN_LIMIT = 10_000
_log = get_logger("twitstack.moderation.accounts")


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
    token_refreshed_at: float | None = None
    # X refused the refresh token (or a fresh token): only a person can fix it, by reconnecting.
    reconnect_needed: bool = False
    reconnect_reason: str | None = None
    # Endpoint -> requests the writer has reserved budget for and not yet heard back about.
    in_flight: dict[str, int] = field(default_factory=dict)
    # Keys of this account's state that could not be read: the page says so (never a false
    # "active" or "no budgets"), with whether Redis refused this user (NOPERM: an old ACL).
    unreadable: list[KeyProblem] = field(default_factory=list)

    @property
    def pause_unknown(self) -> bool:
        """Whether a pause key could not be read: the account may be paused."""
        return any(problem.kind == "paused" for problem in self.unreadable)


@dataclass(frozen=True)
class KeyProblem:
    """A writer key of one account the page could not read."""

    key: str
    kind: str  # keys.WriterKey.kind: budget, rl, in_flight, paused, token
    refused: bool  # NOPERM: this Redis user may not read it; else of another type or shape


def _num(value: bytes | str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(as_text(value))
    except ValueError:
        return None


async def redis_now_ms(redis: Redis) -> float:
    """Redis's clock (TIME) in epoch ms: what the writer's scripts stamp `pending.until` with.

    A user refused TIME (an ACL file from before the Accounts page read it) falls back to this
    host's clock, logged once per process with the fix: the page still renders.
    """
    global _time_refused_logged
    try:
        seconds, micros = await redis.time()
    except ResponseError as exc:
        if not is_permission_error(exc):
            raise
        if not _time_refused_logged:
            _time_refused_logged = True
            _log.warning("moderation.redis_time_refused", error=str(exc), fix=ACL_RECIPE)
        return time.time() * 1000
    return seconds * 1000 + micros / 1000


_time_refused_logged = False


async def account_statuses(redis: Redis, known: list[str]) -> list[AccountStatus]:
    """Status of every account that is configured or that the writer has written keys for."""
    accounts: dict[str, AccountStatus] = {name: AccountStatus(name) for name in known}
    # One read of Redis's clock per render, for every in-flight count's lapse.
    now_ms = await redis_now_ms(redis)

    def account(name: str) -> AccountStatus:
        return accounts.setdefault(name, AccountStatus(name))

    scanned = 0
    try:
        async for raw_key in redis.scan_iter(match=f"{keys.WRITER_PREFIX}:*", count=500):
            scanned += 1
            if scanned > _SCAN_LIMIT:
                break
            key = as_text(raw_key)
            about = keys.parse_writer_key(key)
            if about is None:
                continue  # a lock, a request's notes, or a key of another shape
            status = account(about.account)
            try:
                await _read_key(redis, key, about, status, now_ms)
            except ResponseError as exc:
                status.unreadable.append(_problem(redis, key, about, exc))
    except ResponseError as exc:
        if is_permission_error(exc):
            # No SCAN, no account's state at all: the page fails (the error page) rather
            # than show every account active with nothing in flight.
            _log.error(
                "moderation.account_state_refused", command="SCAN", user=redis_user(redis),
                error=str(exc)[:300], fix=ACL_RECIPE,
            )  # fmt: skip
        raise
    for status in accounts.values():
        status.budgets.sort(key=lambda b: (b.endpoint, b.window))
    return sorted(accounts.values(), key=lambda s: s.name)


def _problem(redis: Redis, key: str, about: WriterKey, exc: ResponseError) -> KeyProblem:
    """What the page shows for a key it could not read, logged with what is missing; an
    outage (no key's fault) is raised."""
    if is_permission_error(exc):
        _log.error(
            "moderation.account_state_refused", key=key, user=redis_user(redis),
            error=str(exc)[:300], fix=ACL_RECIPE,
        )  # fmt: skip
        return KeyProblem(key, about.kind, refused=True)
    if not is_data_error(exc):
        raise exc
    # Of another type than the writer writes (junk written by hand), once per process.
    if key not in _logged_unreadable:
        if len(_logged_unreadable) >= _SCAN_LIMIT:
            _logged_unreadable.clear()
        _logged_unreadable.add(key)
        _log.warning("moderation.account_state_unreadable", key=key, error=str(exc)[:300])
    return KeyProblem(key, about.kind, refused=False)


_logged_unreadable: set[str] = set()


async def _read_key(
    redis: Redis, key: str, about: WriterKey, status: AccountStatus, now_ms: float
) -> None:
    if about.kind == "budget" and about.endpoint is not None:
        # Both windows and the in-flight count in one hash (lua/budget_core.lua).
        names = [
            f"{w}.{p}" for w in keys.RATE_LIMIT_WINDOWS for p in ("limit", "remaining", "reset")
        ]
        found = await redis.hmget(key, [*names, "pending", "pending.until"])
        for i, window in enumerate(keys.RATE_LIMIT_WINDOWS):
            limit, remaining, reset = (_num(v) for v in found[3 * i : 3 * i + 3])
            if limit is None and remaining is None and reset is None:
                continue
            _add_budget(status, about.endpoint, window, limit, remaining, reset, newer=True)
        count, lapses = _num(found[-2]), _num(found[-1])
        # The count lapses at pending.until (ms, on Redis's clock: the writer's scripts compare
        # it with TIME), so it is compared with Redis's clock here too, never this host's.
        if count and lapses is not None and lapses > now_ms:
            status.in_flight[about.endpoint] = int(count)
    elif about.kind == "in_flight" and about.endpoint is not None:
        count = _num(await redis.get(key))
        if count:
            status.in_flight[about.endpoint] = int(count)
    elif about.kind == "rl" and about.endpoint is not None and about.window is not None:
        fields = await redis.hmget(key, ["limit", "remaining", "reset"])
        limit, remaining, reset = (_num(v) for v in fields)
        _add_budget(status, about.endpoint, about.window, limit, remaining, reset)
    elif about.kind == "paused":
        reason, until = await redis.hmget(key, ["reason", "until"])
        status.paused_reason = as_text(reason) if reason is not None else "paused"
        status.paused_until = _num(until)
    elif about.kind == "token":
        # Named fields only: plain tokens an old release left here never leave Redis.
        expires, refreshed, needed, reason = await redis.hmget(
            key, ["expires_at", "refreshed_at", "reconnect_needed", "reconnect_reason"]
        )
        status.token_expires_at = _num(expires)
        status.token_refreshed_at = _num(refreshed)
        status.reconnect_needed = needed is not None and as_text(needed) == "1"
        status.reconnect_reason = as_text(reason) if reason is not None else None


def _add_budget(
    status: AccountStatus,
    endpoint: str,
    window: str,
    limit: float | None,
    remaining: float | None,
    reset: float | None,
    *,
    newer: bool = False,
) -> None:
    # The old layout's hash of a window not migrated yet, or the budget hash's (`newer`): one
    # row each, the budget hash's when both are there.
    same = [b for b in status.budgets if b.endpoint == endpoint and b.window == window]
    if same and not newer:
        return
    for old in same:
        status.budgets.remove(old)
    status.budgets.append(
        Budget(
            endpoint=endpoint,
            window=window,
            limit=None if limit is None else int(limit),
            remaining=None if remaining is None else int(remaining),
            reset=reset,
        )
    )
