"""The canary query: tells "X changed" (it finds nothing either) from "this job is quiet"."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from twitstack.core.logging import get_logger
from twitstack.core.sections.scraper import CanarySpec
from twitstack.scraper.metrics import ScraperMetrics
from twitstack.scraper.models import GraphQLDriftError, NoAccountAvailableError, Page
from twitstack.scraper.proxies import ProxyPool
from twitstack.scraper.twscrape_adapter import TwscrapeClient

log = get_logger("twitstack.scraper.canary")


class CanaryQuery:
    """Runs the configured canary through the job's real path, storing nothing."""

    def __init__(
        self,
        spec: CanarySpec,
        *,
        client: TwscrapeClient,
        metrics: ScraperMetrics,
        proxies: ProxyPool | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self._client = client
        self._metrics = metrics
        self._proxies = proxies or ProxyPool()
        self._clock = clock

    async def run(self) -> int | None:
        """Tweets found (at most min_tweets are fetched), or None when no account answered:
        that is an account problem, which the account alerts report, not drift."""
        spec = self.spec
        found = 0
        try:
            async with aclosing(await self._pages()) as pages:
                async for page in pages:
                    found += len(page.tweets)
                    if found >= spec.min_tweets:
                        break
        except NoAccountAvailableError as exc:
            log.warning("scraper.canary_skipped", reason="no account", error=str(exc))
            return None
        except GraphQLDriftError as exc:  # already counted (features_outdated) by the observer
            log.error("scraper.canary_failed", kind=spec.kind, target=spec.target, error=str(exc))
            self._metrics.canary_tweets.set(0)
            return 0
        self._metrics.canary_tweets.set(found)
        if found >= spec.min_tweets:
            self._metrics.canary_last_success.set(self._clock())
            log.info("scraper.canary_ok", tweets=found)
        else:
            self._metrics.graphql_drift.labels(kind="canary_empty").inc()
            log.error(
                "scraper.canary_failed", kind=spec.kind, target=spec.target, tweets=found,
                expected=spec.min_tweets,
            )  # fmt: skip
        return found

    async def _pages(self) -> AsyncGenerator[Page, None]:
        spec, c = self.spec, self._client
        proxy = self._proxies.current(spec.proxy_group) if spec.proxy_group else None
        if spec.kind == "search":
            return c.search(spec.target, limit=spec.min_tweets, proxy=proxy)
        if spec.kind == "list":
            return c.list_tweets(int(spec.target), limit=spec.min_tweets, proxy=proxy)
        user_id = int(spec.target) if spec.target.isdigit() else None
        if user_id is None:
            user_id = await c.user_id(spec.target, proxy=proxy)
        if user_id is None:
            # The canary's own user is gone: that finds nothing, so it counts as empty.
            return _no_pages()
        return c.user_tweets(user_id, limit=spec.min_tweets, proxy=proxy)


async def _no_pages() -> AsyncGenerator[Page, None]:
    return
    yield  # an async generator that yields nothing
