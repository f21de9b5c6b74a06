"""The writer's labelled series at 0 from the start, for every label value known in advance.

prometheus_client creates a labelled child at its first use, so a healthy writer would show
"No data" instead of 0 on a dashboard, and increase() could not see a counter's first step.
"""

from __future__ import annotations

from collections.abc import Iterable

from twitstack.core.sections.spend import ACTIONS
from twitstack.writer.executor import NO_KEYS_REFUSAL
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.reconcile import Verdict
from twitstack.writes.ledger_types import TransitionStatus
from twitstack.writes.models import WriteAction
from twitstack.writes.queue import POISON_REASON
from twitstack.writes.signing import ApprovalFailure

# Dead-letter reasons the writer itself gives (malformed messages name their wire error).
_DEAD_LETTER_REASONS = (POISON_REASON, "handler_error")

# The (kind, reason) pairs of writer_outcomes_total that outcome.classify() gives whatever X
# says, per HTTP method; reasons taken from X's problem type or status appear at first use.
_ANY_METHOD = (
    ("transient_retry", "not_sent"),
    ("auth_refresh", "unauthorized"),
    ("auth_fatal", "unauthorized"),
    ("account_paused", "usage_capped"),
    ("account_paused", "credits_depleted"),
    ("wait_until", "rate_limited"),
    ("wait_until", "daily_limit"),
    ("permanent", "forbidden"),
    ("permanent", "invalid_request"),
    ("permanent", "duplicate_content"),
)
KNOWN_OUTCOMES: dict[str, tuple[tuple[str, str], ...]] = {
    "POST": (
        *_ANY_METHOD,
        ("success", "created"),
        ("ambiguous", "success_without_id"),
        ("ambiguous", "timeout"),
        ("ambiguous", "network_error"),
    ),
    "DELETE": (
        *_ANY_METHOD,
        ("success", "deleted"),
        ("needs_review", "not_deleted"),
        ("transient_retry", "network_error"),
        ("already_gone", "not_found"),
    ),
}
# The rate-limit buckets each action spends (XCall.endpoint), and the method it uses.
ACTION_CALLS = {
    WriteAction.TWEET: ("POST", "tweets.create"),
    WriteAction.DM: ("POST", "dm.create"),
    WriteAction.DELETE: ("DELETE", "tweets.delete"),
    WriteAction.THREAD: ("POST", "tweets.create"),  # every part is a post
}
# writer_rate_limit_remaining before X has said anything for a bucket: not 0, which would read
# as "exhausted" (TwitstackAccountRateLimited watches for 0), and not absent ("No data").
UNKNOWN_REMAINING = -1


def start_at_zero(metrics: WriterMetrics, accounts: Iterable[str]) -> None:
    """Create every child whose labels are known before the first event."""
    accounts = list(accounts)
    metrics.init_spend(accounts, ACTIONS)
    for action in WriteAction:
        metrics.actions_processed.labels(action=str(action))
        metrics.request_latency.labels(action=str(action))
        method, _ = ACTION_CALLS[action]
        for kind, reason in KNOWN_OUTCOMES[method]:
            metrics.outcomes.labels(action=str(action), kind=kind, reason=reason)
    for reason in _DEAD_LETTER_REASONS:
        metrics.dead_letters.labels(reason=reason)
    for verdict in Verdict:
        metrics.reconciliations.labels(result=verdict.value)
    for step in ("begin", "settle"):
        metrics.group_commit_calls.labels(step=step)
        metrics.group_commit_jobs.labels(step=step)
    refusals = [f.value for f in ApprovalFailure]
    refusals += [NO_KEYS_REFUSAL, TransitionStatus.SPENT.value, TransitionStatus.TOMBSTONED.value]
    for reason in refusals:
        metrics.security_events.labels(reason=reason)
    for account in accounts:
        metrics.account_paused.labels(account=account).set(0)
        account_at_zero(metrics, account)


def account_at_zero(metrics: WriterMetrics, account: str) -> None:
    """An account's series before its first event (at start, or when it is first connected)."""
    metrics.token_refreshes.labels(account=account)
    for _, endpoint in ACTION_CALLS.values():
        metrics.rate_limit_remaining.labels(account=account, endpoint=endpoint).set(
            UNKNOWN_REMAINING
        )
