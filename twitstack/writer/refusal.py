"""Approvals the writer does not believe: why, which key they named, and the security event."""

from __future__ import annotations

from dataclasses import dataclass

from twitstack.core.logging import get_logger
from twitstack.writer.metrics import WriterMetrics
from twitstack.writes.models import WriteRequest

_log = get_logger("twitstack.writer")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an approval was not believed, and which key it named (None if it named none)."""

    reason: str
    key_id: str | None


def log_refusal(metrics: WriterMetrics, request: WriteRequest, refusal: Refusal) -> None:
    """Count and log an approval the writer refused (its key id, never the signature)."""
    metrics.security_events.labels(reason=refusal.reason).inc()
    _log.warning(
        "writer.security_approval_refused",
        request_id=request.id,
        account=request.account,
        action=str(request.action),
        reason=refusal.reason,
        key_id=refusal.key_id,
    )
