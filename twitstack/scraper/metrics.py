"""The scraper's Prometheus series, all in the service's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from twitstack.core.metrics import quarantine_counter
from twitstack.scraper.models import DRIFT_KINDS, RUN_ERROR_KINDS, AccountState, Signal


class ScraperMetrics:
    """Accounts, fetches, stores, runs and GraphQL drift.

    Per-job series carry `scrape_job`, not `job`: Prometheus owns `job` (the scrape target's
    name) and would store ours as `exported_job`.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.quarantined = quarantine_counter(registry)
        # The seed's name, kept: tweets handed back by ScraperClient.get_tweets and by jobs.
        self.tweets_fetched = Counter(
            "tweets_fetched", "Tweets fetched from X.", ["scrape_job"], registry=registry
        )
        self.tweets_stored = Counter(
            "scraper_tweets_stored",
            "Tweets stored for the first time.",
            ["scrape_job"],
            registry=registry,
        )
        self.tweets_duplicate = Counter(
            "scraper_tweets_duplicate",
            "Fetched tweets already in the store (counts and last_seen updated).",
            ["scrape_job"],
            registry=registry,
        )
        self.tweets_gone = Counter(
            "scraper_tweets_gone",
            "Tweets a by-id job asked for that X says are gone (deleted or never existed).",
            ["scrape_job"],
            registry=registry,
        )
        self.run_duration = Histogram(
            "scraper_run_duration_seconds",
            "Wall time of one job run.",
            ["scrape_job"],
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
            registry=registry,
        )
        self.run_errors = Counter(
            "scraper_run_errors",
            "Runs that ended badly, by kind (blocked, no_account, suspect_empty, ...).",
            ["scrape_job", "kind"],
            registry=registry,
        )
        self.last_success = Gauge(
            "scraper_job_last_success_timestamp_seconds",
            "When each job last completed a run.",
            ["scrape_job"],
            registry=registry,
        )
        # With last_success, lets one alert rule judge every job against its own schedule.
        self.job_interval = Gauge(
            "scraper_job_interval_seconds",
            "Each job's configured interval between runs (before jitter).",
            ["scrape_job"],
            registry=registry,
        )
        self.job_last_fetch = Gauge(
            "scraper_job_last_fetch_timestamp_seconds",
            "When a run of each job last found any tweet (at start: from the store, else the "
            "start time).",
            ["scrape_job"],
            registry=registry,
        )
        self.job_silent_after = Gauge(
            "scraper_job_silent_after_seconds",
            "How long each job may find no tweets before it is suspicious (0 = never).",
            ["scrape_job"],
            registry=registry,
        )
        self.canary_tweets = Gauge(
            "scraper_canary_tweets",
            "Tweets the canary query found on its last run (-1 = not run yet).",
            registry=registry,
        )
        self.canary_last_success = Gauge(
            "scraper_canary_last_success_timestamp_seconds",
            "When the canary query last found at least its min_tweets.",
            registry=registry,
        )
        self.accounts = Gauge(
            "scraper_accounts", "Scraping accounts by state.", ["state"], registry=registry
        )
        self.next_unlock = Gauge(
            "scraper_account_next_unlock_timestamp_seconds",
            "Earliest time a rate-limited account frees up, per GraphQL queue (0 = none locked).",
            ["queue"],
            registry=registry,
        )
        self.responses = Counter(
            "scraper_graphql_responses",
            "GraphQL responses seen by twscrape, by what they said about the account.",
            ["signal"],
            registry=registry,
        )
        self.graphql_drift = Counter(
            "scraper_graphql_drift",
            "Signs that twscrape no longer speaks X's GraphQL, by kind: features_outdated "
            "(code 336), not_found (404s twscrape retried and gave up), bad_request (other "
            "4xx), transaction_id (its generator failed), canary_empty (a canary found nothing).",
            ["kind"],
            registry=registry,
        )
        self.drafts = Counter(
            "scraper_drafts", "Drafts queued from scraped tweets.", ["scrape_job", "refusable"],
            registry=registry,
        )  # fmt: skip
        # Series known in advance exist at 0 from the start: dashboards show 0, not "No data",
        # and increase() sees the first event (a counter born at 1 shows no increase).
        for state in AccountState:
            self.accounts.labels(state=state.value)
        for signal in Signal:
            self.responses.labels(signal=signal.value)
        for kind in DRIFT_KINDS:
            self.graphql_drift.labels(kind=kind)
        self.canary_tweets.set(-1)

    def declare_job(self, job: str, *, drafts: bool) -> None:
        """Create a job's series at 0 (its counters by every known kind)."""
        for counter in (self.tweets_fetched, self.tweets_stored, self.tweets_duplicate,
                        self.tweets_gone):  # fmt: skip
            counter.labels(scrape_job=job)
        self.run_duration.labels(scrape_job=job)
        for kind in RUN_ERROR_KINDS:
            self.run_errors.labels(scrape_job=job, kind=kind)
        if drafts:
            for refusable in ("true", "false"):
                self.drafts.labels(scrape_job=job, refusable=refusable)
