"""Prometheus series of the moderation service, in its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from twitstack.core.metrics import quarantine_counter

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ModerationMetrics:
    """HTTP traffic by route template, the pending backlog and how long approvals take."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.http_requests = Counter(
            "moderation_http_requests_total",
            "HTTP requests served, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_latency = Histogram(
            "moderation_http_request_duration_seconds",
            "Time to serve an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.pending = Gauge(
            "moderation_pending_requests",
            "Write requests waiting for a moderator (as last ingested).",
            registry=registry,
        )
        self.oldest_pending_age = Gauge(
            "moderation_oldest_pending_age_seconds",
            "How long the oldest pending request has waited for a moderator (0: none); "
            "sampled by moderation, so it is there while every writer is down.",
            registry=registry,
        )
        self.oldest_approved_age = Gauge(
            "moderation_oldest_approved_age_seconds",
            "How long the oldest approved, due request has waited without being executed "
            "(0: none); sampled by moderation, so it is there while every writer is down.",
            registry=registry,
        )
        self.approval_latency = Histogram(
            "moderation_approval_latency_seconds",
            "Time from a request's creation to its approval.",
            buckets=(1, 10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
            registry=registry,
        )
        self.decisions = Counter(
            "moderation_decisions_total",
            "Moderator decisions, by kind (approve, reject, edit).",
            ["decision"],
            registry=registry,
        )
        self.login_failures = Counter(
            "moderation_login_failures_total",
            "Failed or throttled logins, by reason.",
            ["reason"],
            registry=registry,
        )
        self.x_grant_revoke_failures = Counter(
            "moderation_x_grant_revoke_failures_total",
            "Reconnects of an X account whose replaced grant X did not revoke (it stays valid "
            "at X until revoked in the account's X settings).",
            registry=registry,
        )
        self.quarantined = quarantine_counter(registry)
        # At 0 from the start (a dashboard shows 0, not "No data"): every label value is known.
        for decision in ("approve", "reject", "edit"):
            self.decisions.labels(decision=decision)
        for reason in ("bad_credentials", "throttled"):
            self.login_failures.labels(reason=reason)
        self.events_ingested = Counter(
            "moderation_events_ingested_total",
            "Ledger events copied from Redis into the history store.",
            registry=registry,
        )
