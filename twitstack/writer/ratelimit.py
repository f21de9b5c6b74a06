"""Rate-limit budgets per (account, endpoint) and account pauses, shared by replicas in Redis."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

# Grant a send unless a bucket we know about has no room left before its reset. Room is X's
# last reported `remaining` minus our requests still in flight (`pending`, shared by every
# replica): X's count does not include those yet. A bucket whose window has passed is unknown
# territory: send, and learn the new window from X's headers.
_RESERVE = """
local now = tonumber(ARGV[1])
local pending_key = KEYS[#KEYS]
local pending = tonumber(redis.call('GET', pending_key) or '0')
local blocked = 0
for i = 1, #KEYS - 1 do
  local reset = tonumber(redis.call('HGET', KEYS[i], 'reset') or '0')
  if reset > now then
    local remaining = tonumber(redis.call('HGET', KEYS[i], 'remaining') or '1')
    if remaining - pending <= 0 and reset > blocked then blocked = reset end
  end
end
if blocked > 0 then return tostring(blocked) end
redis.call('INCR', pending_key)
redis.call('PEXPIRE', pending_key, ARGV[2])
return '0'
"""

# Record X's view of each bucket and retire one in-flight request. Within one window X's count
# only grows, so the lower `remaining` wins (answers can arrive out of order); an answer from
# an older window is stale and ignored.
_OBSERVE = """
local function update(key, limit, remaining, reset, ttl)
  if limit == '' then return -1 end
  remaining = tonumber(remaining)
  local new_reset = tonumber(reset)
  local old_reset = tonumber(redis.call('HGET', key, 'reset') or '0')
  if old_reset > new_reset then return tonumber(redis.call('HGET', key, 'remaining')) end
  if old_reset == new_reset then
    local old = tonumber(redis.call('HGET', key, 'remaining') or remaining)
    if old < remaining then remaining = old end
  end
  redis.call('HSET', key, 'limit', limit, 'remaining', remaining, 'reset', reset)
  redis.call('EXPIRE', key, ttl)
  return remaining
end
local window = update(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[7])
local daily = update(KEYS[2], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if ARGV[8] == '1' and redis.call('DECR', KEYS[3]) < 0 then redis.call('SET', KEYS[3], 0) end
return {window, daily}
"""

_RELEASE = """
if redis.call('DECR', KEYS[1]) < 0 then redis.call('SET', KEYS[1], 0) end
return 1
"""

_KEY_TTL_S = 2 * 24 * 3600  # longer than the longest (24-hour) window
_WINDOWS = {"window": "x-rate-limit", "24h": "x-user-limit-24hour"}


@dataclass(frozen=True, slots=True)
class Budget:
    """What is known about one bucket: X's limit, what is left, and when it resets (epoch s)."""

    limit: int
    remaining: int
    reset: float


@dataclass(frozen=True, slots=True)
class AccountPause:
    """An account taken out of service (usage cap, credits, bad credentials)."""

    reason: str
    until: float | None  # None: until an operator resumes it


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RateLimitBudgets:
    """Shared per-(account, endpoint) budgets: reserve before sending, learn from every answer."""

    def __init__(
        self,
        redis: Redis,
        *,
        clock: Callable[[], float],
        prefix: str = "twitstack:writer",
        pending_ttl_s: float = 120.0,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._prefix = prefix
        self._pending_ttl_ms = int(pending_ttl_s * 1000)
        self._reserve = redis.register_script(_RESERVE)
        self._observe = redis.register_script(_OBSERVE)
        self._release = redis.register_script(_RELEASE)

    def _key(self, account: str, endpoint: str, window: str) -> str:
        return f"{self._prefix}:rl:{account}:{endpoint}:{window}"

    def _pending_key(self, account: str, endpoint: str) -> str:
        return f"{self._prefix}:rl:{account}:{endpoint}:pending"

    async def reserve(self, account: str, endpoint: str) -> float | None:
        """Claim room for one request; None when granted, else the epoch it is blocked until.

        Every grant must be followed by `observe(..., reserved=True)` with X's answer, or by
        `release()` when no answer with headers came back.
        """
        keys = [self._key(account, endpoint, window) for window in _WINDOWS]
        keys.append(self._pending_key(account, endpoint))
        args: list[str | int] = [repr(self._clock()), self._pending_ttl_ms]
        blocked = float(await self._reserve(keys=keys, args=args))
        return blocked if blocked > 0 else None

    async def release(self, account: str, endpoint: str) -> None:
        """Give back a reservation whose request got no rate-limit headers from X."""
        await self._release(keys=[self._pending_key(account, endpoint)])

    async def observe(
        self, account: str, endpoint: str, headers: Mapping[str, str], *, reserved: bool = True
    ) -> dict[str, int]:
        """Record X's rate-limit headers; returns the remaining count per window seen."""
        lowered = {k.lower(): v for k, v in headers.items()}
        args: list[str | int] = []
        for prefix in _WINDOWS.values():
            values = [lowered.get(f"{prefix}-{part}") for part in ("limit", "remaining", "reset")]
            numbers = [_int(value) for value in values]
            if any(number is None for number in numbers):
                args.extend(["", "", ""])
            else:
                args.extend(str(number) for number in numbers)
        args.extend([_KEY_TTL_S, "1" if reserved else "0"])
        keys = [self._key(account, endpoint, window) for window in _WINDOWS]
        keys.append(self._pending_key(account, endpoint))
        result = await self._observe(keys=keys, args=args)
        return {
            window: int(value)
            for window, value in zip(_WINDOWS, result, strict=True)
            if int(value) >= 0
        }

    async def exhaust_until(self, account: str, endpoint: str, until: float) -> None:
        """Block a bucket until `until` (a 429 that carried no usable headers)."""
        key = self._key(account, endpoint, "window")
        await self._redis.hset(key, mapping={"remaining": 0, "reset": repr(until)})
        await self._redis.expire(key, _KEY_TTL_S)

    async def budget(self, account: str, endpoint: str, window: str = "window") -> Budget | None:
        """The stored state of one bucket, if any."""
        raw = await self._redis.hgetall(self._key(account, endpoint, window))
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return Budget(
            limit=int(fields.get("limit", "0")),
            remaining=int(fields.get("remaining", "0")),
            reset=float(fields.get("reset", "0")),
        )


class AccountPauses:
    """Accounts the writer must not act for, shared by every replica."""

    def __init__(
        self,
        redis: Redis,
        *,
        clock: Callable[[], float],
        prefix: str = "twitstack:writer",
        cache_s: float = 1.0,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._prefix = prefix
        self._cache_s = cache_s
        self._seen: dict[str, tuple[float, AccountPause | None]] = {}

    def _key(self, account: str) -> str:
        return f"{self._prefix}:paused:{account}"

    async def pause(self, account: str, reason: str, until: float | None = None) -> None:
        """Take `account` out of service until `until` (or until `resume`)."""
        self._seen.pop(account, None)
        until_text = repr(until) if until is not None else ""
        await self._redis.hset(self._key(account), mapping={"reason": reason, "until": until_text})

    async def resume(self, account: str) -> bool:
        """Put `account` back in service; True if it was paused."""
        self._seen.pop(account, None)
        return bool(await self._redis.delete(self._key(account)))

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
        raw = await self._redis.hgetall(self._key(account))
        if not raw:
            return None
        until_raw = _text(raw.get(b"until", b""))
        until = float(until_raw) if until_raw else None
        if until is not None and until <= self._clock():
            await self._redis.delete(self._key(account))
            return None
        return AccountPause(reason=_text(raw.get(b"reason", b"")), until=until)
