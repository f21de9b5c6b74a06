"""Operational endpoints: /healthz (process up), /readyz (Redis and the DB answer), /metrics."""

from __future__ import annotations

from ipaddress import ip_address

import anyio
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from twitstack.core.metrics import metrics_response
from twitstack.moderation.access import client_ip, deps_of, is_trusted_proxy

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


def _may_scrape(request: Request) -> bool:
    deps = deps_of(request)
    peer = request.client.host if request.client else ""
    relayed = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    if relayed and not is_trusted_proxy(peer, deps.settings.trusted_proxies):
        # Relayed by a proxy nobody said to trust: the peer (often loopback) tells nothing
        # about the real client, who may be anyone.
        return False
    try:
        address = ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in network for network in deps.settings.metrics_allowed_networks)


async def metrics(request: Request) -> Response:
    """This service's own registry in the Prometheus text format, for allowed networks only."""
    if not _may_scrape(request):
        return PlainTextResponse(
            "403: /metrics is served to [moderation] metrics_allowed_networks only",
            status_code=403,
        )
    return metrics_response(deps_of(request).registry)
