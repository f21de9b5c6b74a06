"""ScraperService under its supervisor contract: starts, runs its jobs on schedule, stops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import generate_latest

from twitstack.core.service import ServiceContext
from twitstack.scraper.service import build_scraper_service
from twitstack.scraper.twscrape_adapter import TwscrapeAccounts

pytestmark = pytest.mark.anyio


async def test_service_runs_a_job_and_stops_between_runs(
    fake_x: Any, make_settings: Any, redis: Any, tmp_path: Path
) -> None:
    """The job runs soon after start (jitter within its interval), metrics show it, and a stop
    request ends run() without cancelling anything."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    await TwscrapeAccounts((data_dir / "scraper-accounts.db").absolute()).upsert_cookies(
        "acc1", "auth_token=t1; ct0=c1"
    )
    settings = make_settings(
        data_dir=data_dir,
        proxy_file=tmp_path / "none.txt",
        scraper={
            "graphql_url_override": fake_x.url,
            "jitter_fraction": 0.0,
            "jobs": [{"name": "py", "kind": "search", "target": "python", "interval_s": 0.2}],
        },
    )
    service = build_scraper_service(
        ServiceContext(settings=settings, redis=redis, data_dir=data_dir)
    )
    assert service.metrics_port == 9103
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            await tg.start(service.run)
            # The fake offers no event to wait on; bounded by fail_after above.
            while not fake_x.fake.seen("SearchTimeline"):  # noqa: ASYNC110
                await anyio.sleep(0.05)
            service.request_stop()
    text = generate_latest(service.registry).decode()
    assert 'scraper_tweets_stored_total{scrape_job="py"}' in text
    assert 'scraper_job_interval_seconds{scrape_job="py"} 0.2' in text
    assert 'scraper_accounts{state="active"} 1.0' in text
