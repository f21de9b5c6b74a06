"""stamina retry instrumentation for the writer: counted in its registry, logged via structlog."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter
from stamina.instrumentation import RetryDetails, RetryHook

from twitstack.core.logging import get_logger

_log = get_logger("twitstack.writer.retries")

# The X operation each write action performs: the `operation` label of writer_retries_total.
OPERATIONS = {"tweet": "post_tweet", "dm": "send_dm", "delete": "delete_tweet"}


def operation_for(action: str) -> str:
    """The X operation a request's action performs (`post_tweet`, `send_dm`, `delete_tweet`)."""
    return OPERATIONS.get(action, action)


def error_class(exc: BaseException) -> str:
    """The error a retry is about: a carrier's `error_class` (X's answer), else the class name."""
    carried = getattr(exc, "error_class", None)
    return carried if isinstance(carried, str) and carried else type(exc).__name__


def writer_retry_hook(registry: CollectorRegistry) -> RetryHook:
    """A stamina on-retry hook counting `writer_retries_total{operation}` in `registry`.

    stamina's own Prometheus hook registers in the global registry, which twitstack never uses;
    the supervisor installs this one instead:
    `stamina.instrumentation.set_on_retry_hooks([writer_retry_hook(service.registry)])`.
    The writer's retries go through `stamina.retry_context`, whose callable name is always
    "<context block>", so the operation comes from the exception that carries the retry (its
    `operation` attribute). stamina's hooks are process-wide: a retry whose exception names no
    operation belongs to another service in the process (the scraper's archive uploads) and is
    logged, not counted as the writer's.
    """
    retries = Counter(
        "writer_retries_total",
        "Retries of calls to X the writer scheduled (idempotent or definitely-unsent calls), "
        "by operation.",
        ["operation"],
        registry=registry,
    )
    for operation in OPERATIONS.values():
        retries.labels(operation=operation)

    def on_retry(details: RetryDetails) -> None:
        operation = getattr(details.caused_by, "operation", None)
        if not isinstance(operation, str) or not operation:
            _log.warning(
                "retry_scheduled",
                callable=details.name,
                retry_num=details.retry_num,
                wait_s=round(details.wait_for, 3),
                error=error_class(details.caused_by),
            )
            return
        retries.labels(operation=operation).inc()
        # request_id, account and action come from the context the writer binds per message.
        _log.warning(
            "writer.retry_scheduled",
            operation=operation,
            retry_num=details.retry_num,
            wait_s=round(details.wait_for, 3),
            waited_s=round(details.waited_so_far, 3),
            error=error_class(details.caused_by),
        )

    return on_retry
