"""Rate-limit budgets per (account, endpoint) and account pauses, shared by replicas in Redis."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from twitstack.core.logging import get_logger
from twitstack.writes import keys, scripts
from twitstack.writes.quarantine import is_wrong_type

_log = get_logger("twitstack.writer.ratelimit")
_KEY_TTL_S = 2 * 24 * 3600  # longer than the longest (24-hour) window
# Header prefix of each window in `keys.RATE_LIMIT_WINDOWS`, in that order.
_HEADER_PREFIXES = {"window": "x-rate-limit", "24h": "x-user-limit-24hour"}
# window.remaining = 0 until max(stored reset, ARGV[1]) in the budget hash (lua/budget_core.lua);
# the key's ttl is ARGV[2]. Writes the new layout's fields only: a window of the old layout not
# migrated yet is folded in by the next budget script, and a field written here is newer.
_EXHAUST = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
local stored = tonumber(redis.call('HGET', KEYS[1], 'window.reset') or '') or 0
local reset = tonumber(ARGV[1])
if stored > reset then reset = stored end
redis.call('HSET', KEYS[1], 'window.remaining', 0, 'window.reset', tostring(reset))
redis.call('EXPIRE', KEYS[1], ARGV[2])
"""


@dataclass(frozen=True, slots=True)
class Budget:
    """What is known about one bucket: X's limit, what is left, and when it resets (epoch s)."""

    limit: int
    remaining: int
    reset: float


@dataclass(frozen=True, slots=True)
class Reservation:
    """`reserve`'s answer: granted when neither `blocked_until` nor `budget_until` is set."""

    blocked_until: float | None  # no rate-limit room until then
    budget_until: float | None  # a spend cap holds the account until then
    spend_reply: tuple[object, ...]  # spend_core's reply, for the writer's metrics

    @property
    def granted(self) -> bool:
        return self.blocked_until is None and self.budget_until is None


@dataclass(frozen=True, slots=True)
class AccountPause:
    """An account taken out of service (usage cap, credits, bad credentials)."""

    reason: str
    until: float | None  # None: until an operator resumes it


def budget_keys(account: str, endpoint: str) -> list[str]:
    """KEYS of the budget scripts: the budget hash, then the old layout's window and 24-hour
    hashes (read only while the budget hash has not folded them in; lua/budget_core.lua)."""
    names = [keys.rate_limit_budget(account, endpoint, w) for w in keys.RATE_LIMIT_WINDOWS]
    return [keys.rate_limit_budgets(account, endpoint), *names]


def observe_args(headers: Mapping[str, str], *, reserved: bool) -> list[str | int]:
    """ARGV of `budget_observe` (lua/budget_core.lua) for X's answer `headers`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    args: list[str | int] = []
    for window in keys.RATE_LIMIT_WINDOWS:
        prefix = _HEADER_PREFIXES[window]
        values = [lowered.get(f"{prefix}-{part}") for part in ("limit", "remaining", "reset")]
        numbers = [_int(value) for value in values]
        if any(number is None for number in numbers):
            args.extend(["", "", ""])
        else:
            args.extend(str(number) for number in numbers)
    args.extend([_KEY_TTL_S, "1" if reserved else "0"])
    return args


def observed(reply: Sequence[object]) -> dict[str, int]:
    """Remaining count per window in `budget_observe`'s reply; unreported windows left out."""
    return {
        window: int(str(value))
        for window, value in zip(keys.RATE_LIMIT_WINDOWS, reply, strict=True)
        if int(str(value)) >= 0
    }


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _text(value: bytes | str) -> str:
    # Anyone with Redis access can write these hashes: junk bytes read as U+FFFD, never raise.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _number(text: str | None, default: float) -> float:
    """A stored number, or `default` for a missing or junk one (never NaN or infinite)."""
    try:
        value = float(text) if text else default
    except ValueError:
        return default
    return value if math.isfinite(value) else default


class RateLimitBudgets:
    """Shared per-(account, endpoint) budgets: reserve before sending, learn from every answer."""

    def __init__(
        self,
        redis: Redis,
        *,
        clock: Callable[[], float],
        pending_ttl_s: float = 120.0,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self.pending_ttl_ms = int(pending_ttl_s * 1000)
        self._reserve = scripts.register(redis, "budget_reserve")
        self._observe = scripts.register(redis, "budget_observe")
        self._release = scripts.register(redis, "budget_release")
        self._exhaust = redis.register_script(_EXHAUST)

    def reserve_args(self) -> list[str | int]:
        """ARGV of `budget_reserve` now (the writer's clock, the in-flight counter's ttl)."""
        return [repr(self._clock()), self.pending_ttl_ms]

    async def reserve(self, account: str, endpoint: str) -> float | None:
        """Claim room for one request; None when granted, else the epoch it is blocked until.

        Every grant must be followed by `observe(..., reserved=True)` with X's answer, or by
        `release()` when no answer with headers came back.
        """
        blocked = await self._reserve(keys=budget_keys(account, endpoint), args=self.reserve_args())
        return float(blocked) if float(blocked) > 0 else None

    async def reserve_spending(
        self, account: str, endpoint: str, spend: tuple[list[str], list[str | int]]
    ) -> Reservation:
        """`reserve`, and in the same atomic step check and charge the spend budget
        (`spend`: spend_core's S and P). A grant is charged: `release(refund=...)` takes
        the charge back if the request never reaches X.
        """
        spend_keys, spend_args = spend
        reply = await self._reserve(
            keys=[*budget_keys(account, endpoint), *spend_keys],
            args=[*self.reserve_args(), *spend_args],
        )
        head = _text(reply[0])
        if head == "budget":
            return Reservation(None, float(_text(reply[1])), tuple(reply[2:]))
        blocked = float(head)
        return Reservation(blocked if blocked > 0 else None, None, tuple(reply[2:]))

    async def release(
        self,
        account: str,
        endpoint: str,
        refund: tuple[list[str], list[str | int]] | None = None,
    ) -> None:
        """Give back a reservation whose request got no rate-limit headers from X.

        `refund` (spend keys and arguments) also takes back its charge: only for a request
        that never reached X.
        """
        refund_keys, refund_args = refund if refund is not None else ([], [])
        await self._release(
            keys=[keys.rate_limit_budgets(account, endpoint), *refund_keys], args=refund_args
        )

    async def observe(
        self, account: str, endpoint: str, headers: Mapping[str, str], *, reserved: bool = True
    ) -> dict[str, int]:
        """Record X's rate-limit headers; returns the remaining count per window seen."""
        result = await self._observe(
            keys=budget_keys(account, endpoint), args=observe_args(headers, reserved=reserved)
        )
        return observed(result)

    async def exhaust_until(self, account: str, endpoint: str, until: float) -> None:
        """Block a bucket until `until` (a 429 that carried no usable headers).

        A reset already stored further ahead stays: a guess never moves a window's end back.
        """
        key = keys.rate_limit_budgets(account, endpoint)
        await self._exhaust(keys=[key], args=[repr(until), _KEY_TTL_S])

    async def budget(self, account: str, endpoint: str, window: str = "window") -> Budget | None:
        """The stored state of one bucket, if any (the old layout's hash until it is folded
        into the budget hash)."""
        parts = ("limit", "remaining", "reset")
        # A key of another type (junk written by hand) holds no budget; any other refusal
        # (NOPERM: the user's ACL lacks the budget keys) is raised, never read as no budget.
        try:
            found = await self._redis.hmget(
                keys.rate_limit_budgets(account, endpoint), [f"{window}.{p}" for p in parts]
            )
        except ResponseError as exc:
            if not is_wrong_type(exc):
                raise
            found = [None, None, None]
        if all(value is None for value in found):
            try:
                found = await self._redis.hmget(
                    keys.rate_limit_budget(account, endpoint, window), list(parts)
                )
            except ResponseError as exc:
                if not is_wrong_type(exc):
                    raise
                return None
        if all(value is None for value in found):
            return None
        limit, remaining, reset = (_text(v) if v is not None else None for v in found)
        return Budget(
            limit=int(_number(limit, 0)),
            remaining=int(_number(remaining, 0)),
            reset=_number(reset, 0),
        )


class AccountPauses:
    """Accounts the writer must not act for, shared by every replica."""

    def __init__(
        self,
        redis: Redis,
        *,
        clock: Callable[[], float],
        cache_s: float = 1.0,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._cache_s = cache_s
        self._seen: dict[str, tuple[float, AccountPause | None]] = {}

    async def pause(self, account: str, reason: str, until: float | None = None) -> None:
        """Take `account` out of service until `until` (or until `resume`)."""
        self._seen.pop(account, None)
        until_text = repr(until) if until is not None else ""
        await self._redis.hset(
            keys.account_paused(account), mapping={"reason": reason, "until": until_text}
        )

    async def resume(self, account: str) -> bool:
        """Put `account` back in service; True if it was paused."""
        self._seen.pop(account, None)
        return bool(await self._redis.delete(keys.account_paused(account)))

    async def paused(self, account: str) -> AccountPause | None:
        """The pause in force for `account`, if any (expired pauses are cleared).

        Answers are reused for `cache_s`: a pause another replica sets is seen that late, which
        costs at most a few requests that X refuses the same way.
        """
        seen = self._seen.get(account)
        now = time.monotonic()
        if seen is not None and now - seen[0] < self._cache_s:
            pause = seen[1]
            if pause is None or pause.until is None or pause.until > self._clock():
                return pause
        found = await self._read(account)
        self._seen[account] = (now, found)
        return found

    async def _read(self, account: str) -> AccountPause | None:
        try:
            raw = await self._redis.hgetall(keys.account_paused(account))
        except ResponseError as exc:
            if not is_wrong_type(exc):
                raise
            # Something sits at the pause key: someone meant a pause; hold until `resume`.
            _log.warning("writer.pause_unreadable", account=account, problem="wrong key type")
            return AccountPause(reason="unreadable pause record", until=None)
        if not raw:
            return None
        until_raw = _text(raw.get(b"until", b""))
        until = _number(until_raw, math.nan) if until_raw else None
        if until is not None and math.isnan(until):
            # A pause whose end cannot be read lasts until `writer resume` (the safe side).
            _log.warning("writer.pause_unreadable", account=account, problem="until not a number")
            until = None
        if until is not None and until <= self._clock():
            await self._redis.delete(keys.account_paused(account))
            return None
        return AccountPause(reason=_text(raw.get(b"reason", b"")), until=until)
