"""Whether X answers at all: the series the outage alerts watch (docs/runbook.md)."""

from __future__ import annotations

from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.outcome import Outcome


def x_failure_kind(outcome: Outcome) -> str | None:
    """`server_error`, `timeout` or `network` when X gave no usable answer, else None.

    Any other answer (a 201, a 403, even a 429) shows X is up and reachable from here.
    """
    if outcome.status is not None and outcome.status >= 500:
        return "server_error"
    if outcome.reason == "timeout":
        return "timeout"
    if outcome.status is None and outcome.reason in {"not_sent", "network_error"}:
        return "network"
    return None


def count_reachability(metrics: WriterMetrics, outcome: Outcome, *, now: float) -> None:
    """Count one call's answer: failures by kind, the current run of them, the last answer."""
    failure = x_failure_kind(outcome)
    if failure is None:
        metrics.x_consecutive_failures.set(0)
        metrics.x_last_answer.set(now)
        return
    metrics.x_failures.labels(kind=failure).inc()
    metrics.x_consecutive_failures.inc()


def error_class(outcome: Outcome) -> str:
    """What a retry is about: the exception class behind a network failure, else X's answer
    ("http_503"); never the class of the exception that carries it through stamina."""
    exception_named = outcome.reason in {"not_sent", "network_error", "timeout"}
    return (outcome.detail if exception_named else None) or outcome.reason
