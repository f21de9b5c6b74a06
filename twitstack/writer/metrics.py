"""The writer's Prometheus series, in the service's own registry (never the global one)."""

from __future__ import annotations

from typing import TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from twitstack.core.metrics import quarantine_counter

# Kinds of writer_x_failures_total: X down, overloaded or unreachable from here.
X_FAILURE_KINDS = ("server_error", "timeout", "network")
_Metric = TypeVar("_Metric", Counter, Gauge, Histogram)
_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class WriterMetrics:
    """Every series an operator needs to run the writer; names keep the seed's contract."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._children: dict[tuple[object, tuple[str, ...]], object] = {}
        self.quarantined = quarantine_counter(registry)
        self.actions_processed = Counter(
            "writer_actions_processed_total",
            "Write requests the writer finished handling, by action.",
            ["action"],
            registry=registry,
        )
        self.worker_backoff = Gauge(
            "writer_worker_backoff_seconds",
            "Seconds a worker is currently backing off (Redis outage, transient X errors).",
            registry=registry,
        )
        self.outcomes = Counter(
            "writer_outcomes_total",
            "Classified outcomes of calls to X, by action, kind and reason.",
            ["action", "kind", "reason"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "writer_dead_letters_total",
            "Queue messages moved to write_queue:dead, by reason.",
            ["reason"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "writer_queue_depth", "Messages waiting in write_queue.", registry=registry
        )
        self.processing_depth = Gauge(
            "writer_processing_depth",
            "Messages taken but not yet acked, over all consumers' processing lists.",
            registry=registry,
        )
        self.schedule_depth = Gauge(
            "writer_schedule_depth",
            "Requests waiting for their not_before time (or a rate-limit reset).",
            registry=registry,
        )
        self.dead_letter_depth = Gauge(
            "writer_dead_letter_depth",
            "Messages in write_queue:dead, waiting for an operator to retry or discard them.",
            registry=registry,
        )
        self.oldest_pending_age = Gauge(
            "writer_oldest_pending_age_seconds",
            "Age of the oldest request waiting for moderation.",
            registry=registry,
        )
        self.request_latency = Histogram(
            "writer_request_duration_seconds",
            "Latency of calls to X, by action.",
            ["action"],
            buckets=_LATENCY_BUCKETS_S,
            registry=registry,
        )
        # Group commit: jobs / calls is the mean batch (a ratio of two counters, as a size
        # has no unit a histogram could name).
        self.group_commit_calls = Counter(
            "writer_group_commit_calls_total",
            "Calls of the writer's begin and settle steps (each carries a batch of jobs), by step.",
            ["step"],
            registry=registry,
        )
        self.group_commit_jobs = Counter(
            "writer_group_commit_jobs_total",
            "Jobs those calls carried (group commit), by step.",
            ["step"],
            registry=registry,
        )
        self.rate_limit_remaining = Gauge(
            "writer_rate_limit_remaining",
            "Requests left in the current X window, per account and endpoint (-1 until X said).",
            ["account", "endpoint"],
            registry=registry,
        )
        self.token_expiry = Gauge(
            "writer_token_expiry_timestamp_seconds",
            "When the account's OAuth 2.0 access token expires (Unix time).",
            ["account"],
            registry=registry,
        )
        self.token_last_refresh = Gauge(
            "writer_token_last_refresh_timestamp_seconds",
            "When this replica last refreshed the account's OAuth 2.0 pair (Unix time).",
            ["account"],
            registry=registry,
        )
        self.reconnect_needed = Gauge(
            "writer_account_reconnect_needed",
            "1 after X refused the account's refresh token (or a fresh token): reconnect it.",
            ["account"],
            registry=registry,
        )
        self.token_refreshes = Counter(
            "writer_token_refreshes_total",
            "OAuth 2.0 token refreshes this replica performed.",
            ["account"],
            registry=registry,
        )
        self.account_paused = Gauge(
            "writer_account_paused",
            "1 while the account is paused (usage cap, credits, credentials), else 0.",
            ["account"],
            registry=registry,
        )
        self.media_uploads = Counter(
            "writer_media_uploads_total",
            "Attachment uploads to X before a post, by result (uploaded, cached, or a failure).",
            ["result"],
            registry=registry,
        )
        self.reconciliations = Counter(
            "writer_reconciliations_total",
            "Reconciliations of unknown requests, by result.",
            ["result"],
            registry=registry,
        )
        self.claim_conflicts = Counter(
            "writer_post_claim_conflicts_total",
            "Posts X created for a request whose id another request had already claimed.",
            registry=registry,
        )
        self.security_events = Counter(
            "writer_security_events_total",
            "Requests refused for security reasons (bad or missing approval signature).",
            ["reason"],
            registry=registry,
        )
        self.x_failures = Counter(
            "writer_x_failures_total",
            "Calls to X that got no usable answer: kind server_error (5xx), timeout, network.",
            ["kind"],
            registry=registry,
        )
        for kind in X_FAILURE_KINDS:  # at 0 from the start: a dashboard shows 0, an alert sees 0->1
            self.x_failures.labels(kind=kind)
        self.x_consecutive_failures = Gauge(
            "writer_x_consecutive_failures",
            "Calls to X in a row, across workers, that got no usable answer (0 after any answer).",
            registry=registry,
        )
        self.x_last_answer = Gauge(
            "writer_x_last_answer_timestamp_seconds",
            "When X last gave a usable answer (any status below 500), Unix time; 0 until then.",
            registry=registry,
        )
        self.x_spend = Counter(
            "twitstack_x_spend_usd_total",
            "US dollars X bills for the writer's calls (sends, retries, read-backs), by action.",
            ["account", "action"],
            registry=registry,
        )
        self.budget_used = Gauge(
            "twitstack_x_spend_budget_used_ratio",
            "Spend of the current period over its cap (scope: account name or total).",
            ["scope", "period"],
            registry=registry,
        )
        self.budget_reached = Gauge(
            "twitstack_x_spend_budget_reached",
            "1 when the next request would wait: the scope's spend cap for the period is reached.",
            ["scope", "period"],
            registry=registry,
        )
        self.redis_errors = Counter(
            "writer_redis_errors_total",
            "Redis errors the writer survived by backing off.",
            registry=registry,
        )
        self.redis_permission_errors = Counter(
            "writer_redis_permission_errors_total",
            "Commands Redis refused the writer's ACL user (NOPERM); the log names what it lacks.",
            registry=registry,
        )

    def child(self, metric: _Metric, *values: str) -> _Metric:
        """`metric.labels(*values)`, looked up once per label values.

        labels() checks its arguments and takes the metric's lock on every call, several times
        per request on the hot path; it hands back the same child each time, so keeping it is
        the same series. Only for series the writer never removes.
        """
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return cast(_Metric, found)

    def count_group_commit(self, step: str, jobs: int) -> None:
        """One call of `step` ("begin" or "settle") went out carrying `jobs` jobs."""
        self.child(self.group_commit_calls, step).inc()
        self.child(self.group_commit_jobs, step).inc(jobs)

    def init_spend(self, accounts: list[str], actions: tuple[str, ...]) -> None:
        """Start every (account, action) spend series and budget gauge at 0."""
        for account in accounts:
            for action in actions:
                self.x_spend.labels(account=account, action=action)
        for scope in [*accounts, "total"]:
            for period in ("day", "month"):
                self.budget_used.labels(scope=scope, period=period)
                self.budget_reached.labels(scope=scope, period=period)
