"""The seed's ScraperClient: raw tweet JSON by id, with the `tweets_fetched_total` counter."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
from prometheus_client import CollectorRegistry, Counter

from twitstack.core.metrics import new_registry
from twitstack.scraper.cookies import load_cookie_file
from twitstack.scraper.paths import accounts_db_path
from twitstack.scraper.twscrape_adapter import TwscrapeAccounts, TwscrapeClient


class ScraperClient:
    """Fetch tweets by id through the scraping account pool.

    `cookies_path` (the seed's cookie JSON file) is imported into the pool on first use, not
    in the constructor. Without `accounts_db` the configured one (settings) is used.
    """

    def __init__(
        self,
        cookies_path: str | None = None,
        *,
        accounts_db: Path | None = None,
        registry: CollectorRegistry | None = None,
        wait_timeout_s: float = 30.0,
    ) -> None:
        self.cookies_path = Path(cookies_path) if cookies_path else None
        self.registry = registry or new_registry()
        self.tweets_fetched_total = Counter(
            "tweets_fetched", "Tweets returned by ScraperClient.get_tweets.", registry=self.registry
        )
        self._accounts_db = accounts_db
        self._wait_timeout_s = wait_timeout_s
        self._client: TwscrapeClient | None = None
        self._lock = anyio.Lock()

    async def _ready(self) -> TwscrapeClient:
        async with self._lock:
            if self._client is None:
                db = self._accounts_db or _configured_accounts_db()
                if self.cookies_path is not None:
                    accounts = TwscrapeAccounts(db)
                    for username, cookies in load_cookie_file(self.cookies_path):
                        await accounts.upsert_cookies(username, cookies)
                self._client = TwscrapeClient(db, wait_timeout_s=self._wait_timeout_s)
            return self._client

    async def get_tweets(self, ids: list[str]) -> list[Mapping[str, Any]]:
        """X's JSON for each tweet found (missing ones are left out), in the order asked."""
        client = await self._ready()
        found: list[Mapping[str, Any]] = []
        for tweet_id in ids:
            raw = await client.tweet_json(int(tweet_id))
            if raw is not None:
                found.append(raw)
                self.tweets_fetched_total.inc()
        return found


def _configured_accounts_db() -> Path:
    from twitstack.core.config import load_settings

    # The data directory may not exist yet when the seed's client is the first thing to run.
    return accounts_db_path(load_settings())
