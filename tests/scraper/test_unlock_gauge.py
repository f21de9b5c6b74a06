"""scraper_account_next_unlock_timestamp_seconds: 0 per used queue from start, back to 0 after."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from twitstack.scraper.twscrape_adapter import QUEUES_BY_JOB_KIND, TwscrapeAccounts

pytestmark = pytest.mark.anyio


def _unlock(s: Any, queue: str) -> float:
    value = s.metrics.next_unlock.collect()[0].samples
    return next(sample.value for sample in value if sample.labels["queue"] == queue)


async def test_next_unlock_is_0_until_a_lock_and_again_once_it_is_gone(
    fake_x: Any, accounts: TwscrapeAccounts, make_scraper: Any
) -> None:
    async with make_scraper() as s:
        s.health.watch_queues(QUEUES_BY_JOB_KIND["search"])
        await s.health.refresh_metrics()
        samples = {
            sample.labels["queue"]: sample.value
            for family in s.metrics.next_unlock.collect()
            for sample in family.samples
        }
        assert samples == {"SearchTimeline": 0.0}  # exists before any lock: 0, not "No data"

        fake_x.fake.inject("rate_limit", account="t1", op="SearchTimeline")
        with anyio.fail_after(20):
            pages = [p async for p in s.client.search("python", limit=20)]
        assert pages
        await s.health.refresh_metrics()
        assert _unlock(s, "SearchTimeline") > time.time() + 600

        await accounts.reset_locks()  # the lock has passed (or an operator reset it)
        await s.health.refresh_metrics()
        assert _unlock(s, "SearchTimeline") == 0
