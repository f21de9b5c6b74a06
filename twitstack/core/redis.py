"""The process's one Redis connection pool, opened after Redis answers."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from twitstack.core.errors import RedisUnavailableError, RedisVersionError
from twitstack.core.logging import get_logger
from twitstack.core.redis_access import (
    ACL_RECIPE,
    RedisPermissionError,
    is_permission_error,
    redis_user,
)
from twitstack.core.url_masking import mask_query_secrets

log = get_logger(__name__)

_FIRST_WAIT_S = 0.25
_MAX_WAIT_S = 5.0
# Commands block for at most this long (BLMOVE and friends pass smaller timeouts).
SOCKET_TIMEOUT_S = 15.0
CONNECT_TIMEOUT_S = 5.0
# BLMOVE (6.2), and SET with NX and GET together (7.0), which the ledger's scripts use to check
# and take a spent nonce or a post claim in one command.
MIN_REDIS_VERSION = (7, 0)


def create_redis(url: str, *, max_connections: int = 64) -> Redis:
    """A client over a new pool; no I/O happens until the first command."""
    # TCP keepalive notices a peer that vanished without a FIN; a unix socket has no such
    # option (redis-py refuses the keyword there), and a dead local peer closes it anyway.
    tcp = {} if url.startswith("unix://") else {"socket_keepalive": True}
    return Redis.from_url(
        url,
        max_connections=max_connections,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        **tcp,
        health_check_interval=30,
        # A few quick retries hide a blip (failover, restart); longer outages surface to the
        # services, which back off in their own loops instead of crashing the daemon.
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


async def wait_for_redis(redis: Redis, url: str, *, timeout_s: float) -> None:
    """PING until Redis answers, logging each failure; RedisUnavailableError after `timeout_s`."""
    deadline = anyio.current_time() + timeout_s
    delay = _FIRST_WAIT_S
    while True:
        try:
            with anyio.fail_after(CONNECT_TIMEOUT_S):
                await redis.ping()
            return
        except (RedisError, OSError, TimeoutError) as exc:
            if is_permission_error(exc):
                # Redis answered: waiting longer would not change the user's ACL.
                raise RedisPermissionError(
                    f"Redis at {redact_url(url)} refuses PING to user {redis_user(redis)} "
                    f"({exc}); {ACL_RECIPE}"
                ) from None
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                raise RedisUnavailableError(
                    f"cannot reach Redis at {redact_url(url)} ({exc.__class__.__name__}: {exc}); "
                    "start Redis or set redis_url, or try `twitstack demo` for an embedded setup"
                ) from None
            wait = min(delay, remaining)
            log.warning(
                "redis.unavailable",
                url=redact_url(url),
                error=str(exc),
                retry_in_s=round(wait, 2),
                retries_remaining=_retries_left(remaining, delay),
            )
            await anyio.sleep(wait)
            delay = min(delay * 2, _MAX_WAIT_S)


def _retries_left(remaining_s: float, delay_s: float) -> int:
    # An estimate for the log line: how many more waits of growing length fit in the budget.
    count, wait, left = 0, delay_s, remaining_s
    while left > 0 and count < 1000:
        left -= wait
        wait = min(wait * 2, _MAX_WAIT_S)
        count += 1
    return max(count, 1) if math.isfinite(remaining_s) else 0


def redact_url(url: str) -> str:
    """The URL without its password (in the user info or a `?password=`), for logs and errors."""
    url = mask_query_secrets(url)
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user + ':***' if user else ':***'}@{host}"


def redis_version_tuple(version: str) -> tuple[int, ...]:
    """(major, minor) of a `redis_version` string; non-numeric parts count as 0."""
    return tuple(int(p) if p.isdigit() else 0 for p in version.split(".")[:2])


async def log_server_info(redis: Redis) -> str:
    """Log Redis's version and persistence settings once; return the version.

    Raises RedisVersionError on a server older than MIN_REDIS_VERSION: the ledger's scripts
    would fail on their first SET NX GET instead, one message at a time.
    """
    info = await redis.info("server")
    persistence = await redis.info("persistence")
    version = str(info.get("redis_version", "?"))
    if version[:1].isdigit() and redis_version_tuple(version) < MIN_REDIS_VERSION:
        wanted = ".".join(map(str, MIN_REDIS_VERSION))
        raise RedisVersionError(
            f"Redis {version} is too old: twitstack needs Redis {wanted} or newer "
            "(the ledger's scripts use SET with NX and GET together)"
        )
    log.info(
        "redis.connected",
        version=version,
        mode=info.get("redis_mode"),
        aof_enabled=bool(persistence.get("aof_enabled")),
    )
    return version


@asynccontextmanager
async def open_redis(
    url: str, *, max_connections: int = 64, startup_timeout_s: float = 30.0
) -> AsyncIterator[Redis]:
    """Open the shared pool once Redis answers; close it on exit."""
    redis = create_redis(url, max_connections=max_connections)
    try:
        await wait_for_redis(redis, url, timeout_s=startup_timeout_s)
        try:
            await log_server_info(redis)
        except RedisError as exc:
            if not is_permission_error(exc):
                raise
            raise RedisPermissionError(
                f"Redis at {redact_url(url)}: user {redis_user(redis)} may not run INFO "
                f"({exc}); {ACL_RECIPE}"
            ) from None
        yield redis
    finally:
        with anyio.CancelScope(shield=True):
            await redis.aclose()
