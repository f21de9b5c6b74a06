"""Operational endpoints: /healthz (process up), /readyz (Redis and the DB answer), /metrics."""

from __future__ import annotations

import anyio
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from twitstack.core.metrics import metrics_response
from twitstack.moderation.access import deps_of

_READY_TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    """The process is up (the seed's contract: exactly {"status": "ok"})."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """200 when Redis and the database both answer, 503 naming what does not."""
    deps = deps_of(request)
    checks: dict[str, str] = {}
    with anyio.move_on_after(_READY_TIMEOUT_S):
        try:
            await deps.redis.ping()
            checks["redis"] = "ok"
        except (RedisError, OSError):
            checks["redis"] = "unavailable"
    checks.setdefault("redis", "timeout")
    with anyio.move_on_after(_READY_TIMEOUT_S):
        checks["database"] = "ok" if await deps.db.ping() else "unavailable"
    checks.setdefault("database", "timeout")
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


async def metrics(request: Request) -> Response:
    """This service's own registry in the Prometheus text format."""
    return metrics_response(deps_of(request).registry)
