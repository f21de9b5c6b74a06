"""Prometheus registries: one per service, never the global default."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from twitstack import __version__

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route


def new_registry() -> CollectorRegistry:
    """Return an empty registry owned by one service."""
    return CollectorRegistry(auto_describe=True)


class ServiceHealthMetrics:
    """Daemon-level series for one service, kept in that service's own registry."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self._up = Gauge(
            "twitstack_service_up",
            "1 while the service is running and ready, 0 otherwise.",
            ["service"],
            registry=registry,
        ).labels(service=service)
        self._restarts = Counter(
            "twitstack_service_restarts_total",
            "Times the supervisor restarted the service after a crash.",
            ["service"],
            registry=registry,
        ).labels(service=service)
        self._parked = Gauge(
            "twitstack_service_parked",
            "1 while the service is parked after a crash loop (retried on a long backoff).",
            ["service"],
            registry=registry,
        ).labels(service=service)
        self._parked.set(0)
        Info("twitstack_build", "Version of twitstack and Python.", registry=registry).info(
            {"version": __version__, "python": platform.python_version(), "service": service}
        )

    def set_up(self, up: bool) -> None:
        self._up.set(1 if up else 0)

    def set_parked(self, parked: bool) -> None:
        self._parked.set(1 if parked else 0)

    def count_restart(self) -> None:
        self._restarts.inc()


def quarantine_counter(registry: CollectorRegistry) -> Counter:
    """`twitstack_quarantined_total{source,reason}` in `registry` (see writes/quarantine.py)."""
    return Counter(
        "twitstack_quarantined_total",
        "Shared items (ledger records, events, scraped items) quarantined as unreadable.",
        ["source", "reason"],
        registry=registry,
    )


def metrics_response(registry: CollectorRegistry) -> Response:
    """`registry` in the Prometheus text format, as an HTTP response."""
    # Starlette on first use: the services that serve /metrics on a port of their own do not
    # load it (twitstack.core.metrics_server); the moderation app, which has it anyway, does.
    from starlette.responses import Response

    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def metrics_route(registry: CollectorRegistry) -> Route:
    """A Starlette route serving `registry` at /metrics."""
    from starlette.routing import Route

    async def endpoint(_: Request) -> Response:
        return metrics_response(registry)

    return Route("/metrics", endpoint, methods=["GET"])
