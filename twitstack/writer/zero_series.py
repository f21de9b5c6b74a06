"""The writer's labelled series at 0 from the start, for every label value known in advance.

prometheus_client creates a labelled child at its first use, so a healthy writer would show
"No data" instead of 0 on a dashboard, and increase() could not see a counter's first step.
"""

from __future__ import annotations

from collections.abc import Iterable

from twitstack.writer.executor import NO_KEYS_REFUSAL
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.reconcile import Verdict
from twitstack.writes.ledger_types import TransitionStatus
from twitstack.writes.models import WriteAction
from twitstack.writes.queue import POISON_REASON
from twitstack.writes.signing import ApprovalFailure

# Dead-letter reasons the writer itself gives (malformed messages name their wire error).
_DEAD_LETTER_REASONS = (POISON_REASON, "handler_error")


def start_at_zero(metrics: WriterMetrics, accounts: Iterable[str]) -> None:
    """Create every child whose labels are known before the first event."""
    for action in WriteAction:
        metrics.actions_processed.labels(action=str(action))
        metrics.request_latency.labels(action=str(action))
    for reason in _DEAD_LETTER_REASONS:
        metrics.dead_letters.labels(reason=reason)
    for verdict in Verdict:
        metrics.reconciliations.labels(result=verdict.value)
    refusals = [f.value for f in ApprovalFailure]
    refusals += [NO_KEYS_REFUSAL, TransitionStatus.SPENT.value, TransitionStatus.TOMBSTONED.value]
    for reason in refusals:
        metrics.security_events.labels(reason=reason)
    for account in accounts:
        metrics.account_paused.labels(account=account).set(0)
        metrics.token_refreshes.labels(account=account)
