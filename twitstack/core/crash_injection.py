"""Crash injection on request: make a named service raise, to prove restarts work for real.

Off unless `[supervisor] crash_injection = true`. Then the supervisor watches one Redis key per
running service, `twitstack:debug:crash:<service>`; its value is how many crashes to inject
(anything that is not a positive integer counts as one). Each time the key is seen the count
is taken down by one and the service's task group gets an `InjectedCrash`, exactly as if the
service itself had raised: the supervisor logs it, counts it and restarts the service.

    redis-cli SET twitstack:debug:crash:moderation 1
"""

from __future__ import annotations

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from twitstack.core.errors import TwitstackError

CRASH_KEY_PREFIX = "twitstack:debug:crash:"
POLL_S = 0.2

# Take one crash off the count atomically, so two daemons watching one key inject it once.
_TAKE_ONE = """
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local n = tonumber(value)
if n == nil or n <= 1 then
    redis.call('DEL', KEYS[1])
else
    redis.call('SET', KEYS[1], tostring(math.floor(n) - 1))
end
return 1
"""


def crash_key(service: str) -> str:
    """The Redis key that asks for a crash of `service`."""
    return CRASH_KEY_PREFIX + service


class InjectedCrash(TwitstackError):
    """A crash an operator or a test asked for through the crash-injection key."""


class CrashInjector:
    """Watches the crash keys in Redis; see the module docstring."""

    def __init__(self, redis: Redis, *, poll_s: float = POLL_S) -> None:
        self._redis = redis
        self._poll_s = poll_s

    async def take(self, service: str) -> bool:
        """Whether a crash of `service` was requested (consuming one)."""
        return bool(await self._redis.eval(_TAKE_ONE, 1, crash_key(service)))

    async def watch(self, service: str) -> None:
        """Raise `InjectedCrash` once a crash of `service` is requested; never returns else."""
        while True:
            await anyio.sleep(self._poll_s)
            try:
                requested = await self.take(service)
            except (RedisError, OSError):
                continue  # a Redis outage is the services' business, not a crash request
            if requested:
                raise InjectedCrash(f"{service}: crash injected through {crash_key(service)}")
