"""The scraper's Prometheus series, all in the service's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from twitstack.scraper.models import AccountState


class ScraperMetrics:
    """Accounts, fetches, stores, runs and GraphQL drift.

    Per-job series carry `scrape_job`, not `job`: Prometheus owns `job` (the scrape target's
    name) and would store ours as `exported_job`.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
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
            "Requests X rejected for outdated GraphQL features (upgrade twscrape).",
            registry=registry,
        )
        self.drafts = Counter(
            "scraper_drafts", "Drafts queued from scraped tweets.", ["scrape_job", "refusable"],
            registry=registry,
        )  # fmt: skip
        for state in AccountState:
            self.accounts.labels(state=state.value)
