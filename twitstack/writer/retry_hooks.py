"""stamina retry instrumentation for the writer: counted in its registry, logged via structlog."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter
from stamina.instrumentation import RetryDetails, RetryHook

from twitstack.core.logging import get_logger

_log = get_logger("twitstack.writer.retries")


def error_class(exc: BaseException) -> str:
    """The error a retry is about: a carrier's `error_class` (X's answer), else the class name."""
    carried = getattr(exc, "error_class", None)
    return carried if isinstance(carried, str) and carried else type(exc).__name__


def writer_retry_hook(registry: CollectorRegistry) -> RetryHook:
    """A stamina on-retry hook counting `writer_retries_total{callable}` in `registry`.

    stamina's own Prometheus hook registers in the global registry, which twitstack never uses;
    the supervisor installs this one instead:
    `stamina.instrumentation.set_on_retry_hooks([writer_retry_hook(service.registry)])`.
    """
    retries = Counter(
        "writer_retries_total",
        "Retries stamina scheduled (idempotent or definitely-unsent calls only).",
        ["callable"],
        registry=registry,
    )

    def on_retry(details: RetryDetails) -> None:
        retries.labels(callable=details.name).inc()
        # request_id, account and action come from the context the writer binds per message.
        _log.warning(
            "writer.retry_scheduled",
            callable=details.name,
            retry_num=details.retry_num,
            wait_s=round(details.wait_for, 3),
            waited_s=round(details.waited_so_far, 3),
            error=error_class(details.caused_by),
        )

    return on_retry
