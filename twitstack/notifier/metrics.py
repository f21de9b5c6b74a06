"""The notifier's Prometheus series, in its own registry; known label sets start at 0."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from twitstack.core.metrics import quarantine_counter

OUTCOMES = ("sent", "retried", "dead_lettered")


class NotifierMetrics:
    """Deliveries by channel, event and outcome; outbox and dead-letter depths."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "notifier_notifications_total",
            "Notification delivery attempts, by channel, event kind and outcome "
            "(sent, retried, dead_lettered).",
            ["channel", "event", "outcome"],
            registry=registry,
        )
        self.outbox = Gauge(
            "notifier_outbox_depth",
            "Notification deliveries waiting to be sent or retried.",
            registry=registry,
        )
        self.dead_letters = Gauge(
            "notifier_dead_letter_depth",
            "Notification deliveries that gave up (`twitstack notify dead` lists, retries).",
            registry=registry,
        )
        self.last_check = Gauge(
            "notifier_last_check_timestamp_seconds",
            "When the notifier last looked for waiting requests, reconnects and dead letters.",
            registry=registry,
        )
        self.redis_errors = Counter(
            "notifier_redis_errors_total",
            "Redis errors the notifier survived by backing off.",
            registry=registry,
        )
        self.quarantined = quarantine_counter(registry)

    def zero(self, channels: Mapping[str, Sequence[str]]) -> None:
        """Create every (channel, event, outcome) the configuration can produce, at 0."""
        for channel, events in channels.items():
            for event in events:
                for outcome in OUTCOMES:
                    self.notifications.labels(channel=channel, event=event, outcome=outcome)

    def count(self, channel: str, event: str, outcome: str) -> None:
        self.notifications.labels(channel=channel, event=event, outcome=outcome).inc()
