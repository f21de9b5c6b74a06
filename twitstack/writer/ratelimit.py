"""Rate-limit budgets per (account, endpoint) and account pauses, shared by replicas in Redis."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

# Grant a send unless a bucket we know about is exhausted and its window has not reset yet.
# A bucket whose window has passed is unknown territory: send, and learn the new window from
# X's headers. Decrementing here (not on the response) keeps concurrent replicas honest.
_RESERVE = """
local now = tonumber(ARGV[1])
local blocked = 0
for _, key in ipairs(KEYS) do
  local reset = tonumber(redis.call('HGET', key, 'reset') or '0')
  local remaining = tonumber(redis.call('HGET', key, 'remaining') or '1')
  if reset > now and remaining <= 0 and reset > blocked then blocked = reset end
end
if blocked > 0 then return tostring(blocked) end
for _, key in ipairs(KEYS) do
  local reset = tonumber(redis.call('HGET', key, 'reset') or '0')
  if reset > now then redis.call('HINCRBY', key, 'remaining', -1) end
end
return '0'
"""

# Record X's view of a bucket. Within one window keep the lower of ours and X's count, since
# our reservations for requests still in flight are not in X's count yet; an answer from an
# older window is stale and ignored.
_OBSERVE = """
local limit, remaining, reset = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local old_reset = tonumber(redis.call('HGET', KEYS[1], 'reset') or '0')
if old_reset > reset then return redis.call('HGET', KEYS[1], 'remaining') end
if old_reset == reset then
  local old = tonumber(redis.call('HGET', KEYS[1], 'remaining') or ARGV[2])
  if old < remaining then remaining = old end
end
redis.call('HSET', KEYS[1], 'limit', limit, 'remaining', remaining, 'reset', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return tostring(remaining)
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
        self, redis: Redis, *, clock: Callable[[], float], prefix: str = "twitstack:writer"
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._prefix = prefix
        self._reserve = redis.register_script(_RESERVE)
        self._observe = redis.register_script(_OBSERVE)

    def _key(self, account: str, endpoint: str, window: str) -> str:
        return f"{self._prefix}:rl:{account}:{endpoint}:{window}"

    async def reserve(self, account: str, endpoint: str) -> float | None:
        """Take one unit of every bucket; None when granted, else the epoch it is blocked until."""
        keys = [self._key(account, endpoint, window) for window in _WINDOWS]
        blocked = float(await self._reserve(keys=keys, args=[repr(self._clock())]))
        return blocked if blocked > 0 else None

    async def observe(
        self, account: str, endpoint: str, headers: Mapping[str, str]
    ) -> dict[str, int]:
        """Record X's rate-limit headers; returns the remaining count per window seen."""
        lowered = {k.lower(): v for k, v in headers.items()}
        seen: dict[str, int] = {}
        for window, prefix in _WINDOWS.items():
            limit = _int(lowered.get(f"{prefix}-limit"))
            remaining = _int(lowered.get(f"{prefix}-remaining"))
            reset = _int(lowered.get(f"{prefix}-reset"))
            if limit is None or remaining is None or reset is None:
                continue
            key = self._key(account, endpoint, window)
            args = [limit, remaining, reset, _KEY_TTL_S]
            result = await self._observe(keys=[key], args=args)
            seen[window] = int(float(result))
        return seen

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
        self, redis: Redis, *, clock: Callable[[], float], prefix: str = "twitstack:writer"
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._prefix = prefix

    def _key(self, account: str) -> str:
        return f"{self._prefix}:paused:{account}"

    async def pause(self, account: str, reason: str, until: float | None = None) -> None:
        """Take `account` out of service until `until` (or until `resume`)."""
        until_text = repr(until) if until is not None else ""
        await self._redis.hset(self._key(account), mapping={"reason": reason, "until": until_text})

    async def resume(self, account: str) -> bool:
        """Put `account` back in service; True if it was paused."""
        return bool(await self._redis.delete(self._key(account)))

    async def paused(self, account: str) -> AccountPause | None:
        """The pause in force for `account`, if any (expired pauses are cleared)."""
        raw = await self._redis.hgetall(self._key(account))
        if not raw:
            return None
        until_raw = _text(raw.get(b"until", b""))
        until = float(until_raw) if until_raw else None
        if until is not None and until <= self._clock():
            await self._redis.delete(self._key(account))
            return None
        return AccountPause(reason=_text(raw.get(b"reason", b"")), until=until)
