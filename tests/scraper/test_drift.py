"""GraphQL drift is loud: 404s twscrape swallows, broken transaction ids and an empty canary
are counted by kind and fail the run; a quiet job is told apart by its silence gauges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import generate_latest

from twitstack.core.sections.scraper import CanarySpec
from twitstack.core.service import ServiceContext
from twitstack.scraper.canary import CanaryQuery
from twitstack.scraper.jobs import Job
from twitstack.scraper.models import DRIFT_KINDS, RUN_ERROR_KINDS
from twitstack.scraper.service import build_scraper_service
from twitstack.scraper.twscrape_adapter import TwscrapeAccounts, break_sandbox_transaction_ids

pytestmark = pytest.mark.anyio


def _job(target: str = "python") -> Job:
    return Job(
        name="watch", kind="search", target=target, interval_s=60.0, limit=1000,
        proxy_group=None, draft=None,
    )  # fmt: skip


def _drift(s: Any, kind: str) -> float:
    return float(s.metrics.graphql_drift.labels(kind=kind)._value.get())


async def test_404_with_empty_body_fails_the_run_and_counts_drift(
    fake_x: Any, make_scraper: Any
) -> None:
    """X's 404 with an empty body (stale query ids): twscrape retries 3 times and yields
    nothing; the run fails as graphql_not_found, each 404 is counted, the watermark stays."""
    fake_x.fake.inject("not_found_empty", op="SearchTimeline", times=3)
    async with make_scraper() as s:
        with anyio.fail_after(30):
            outcome = await s.runner.run(_job())
        assert (outcome.status, outcome.error_kind, outcome.fetched) == (
            "failed", "graphql_not_found", 0,
        )  # fmt: skip
        assert _drift(s, "not_found") == 3
        errors = s.metrics.run_errors.labels(scrape_job="watch", kind="graphql_not_found")
        assert errors._value.get() == 1
        assert (await s.store.job_state("watch")).watermark is None
        # Accounts are not blamed for X's change.
        assert not s.health.is_suspect("acc1")
        with anyio.fail_after(30):
            assert (await s.runner.run(_job())).status == "ok"


async def test_other_4xx_counts_as_bad_request(fake_x: Any, make_scraper: Any) -> None:
    """A 400 with errors and no data: twscrape yields nothing; the run fails and is counted."""
    fake_x.fake.inject("bad_request", op="SearchTimeline")
    async with make_scraper() as s:
        with anyio.fail_after(30):
            outcome = await s.runner.run(_job())
        assert (outcome.status, outcome.error_kind) == ("failed", "graphql_bad_request")
        assert _drift(s, "bad_request") == 1


async def test_broken_transaction_ids_fail_the_run(fake_x: Any, make_scraper: Any) -> None:
    """When twscrape's transaction-id generator fails (twscrape #312) it sends nothing and
    yields nothing; the run fails as graphql_transaction_id and the failure is counted."""
    async with make_scraper() as s:
        break_sandbox_transaction_ids(True)
        try:
            with anyio.fail_after(30):
                outcome = await s.runner.run(_job())
        finally:
            break_sandbox_transaction_ids(False)
        assert (outcome.status, outcome.error_kind) == ("failed", "graphql_transaction_id")
        assert _drift(s, "transaction_id") >= 1
        assert not fake_x.fake.seen("SearchTimeline")


async def test_canary_tells_x_changed_from_nothing_new(fake_x: Any, make_scraper: Any) -> None:
    """A canary that finds its tweets records a success; one that finds nothing (a valid but
    empty answer, the silent kind of drift) counts canary_empty."""
    async with make_scraper() as s:
        canary = CanaryQuery(
            CanarySpec(target="python", min_tweets=5), client=s.client, metrics=s.metrics
        )
        with anyio.fail_after(30):
            assert (await canary.run() or 0) >= 5
        assert s.metrics.canary_last_success._value.get() > 0
        assert _drift(s, "canary_empty") == 0
        fake_x.fake.inject("empty_timeline", op="SearchTimeline")
        with anyio.fail_after(30):
            assert await canary.run() == 0
        assert _drift(s, "canary_empty") == 1
        assert s.metrics.canary_tweets._value.get() == 0


@pytest.mark.parametrize(
    ("kind", "target"), [("list", "tech news"), ("user_tweets", "not a name!")]
)
def test_canary_target_must_fit_its_kind(kind: str, target: str) -> None:
    """A canary that could never run is refused with the settings, not at its first run."""
    with pytest.raises(ValueError, match=f"kind '{kind}' needs"):
        CanarySpec(kind=kind, target=target)  # type: ignore[arg-type]


async def test_last_fetch_moves_only_when_a_run_finds_tweets(
    fake_x: Any, make_scraper: Any
) -> None:
    """The silence clock: a run that finds tweets sets it (and the store remembers it for the
    next start); a run that finds nothing leaves it."""
    async with make_scraper() as s:
        with anyio.fail_after(30):
            await s.runner.run(_job())
        gauge = s.metrics.job_last_fetch.labels(scrape_job="watch")
        first = gauge._value.get()
        stored = await s.store.last_fetch("watch")
        assert first > 0
        assert stored is not None
        with anyio.fail_after(30):
            quiet = await s.runner.run(_job())  # nothing after the watermark
        assert (quiet.status, quiet.fetched) == ("ok", 0)
        assert gauge._value.get() == first
        assert await s.store.last_fetch("watch") == stored
        assert await s.store.last_fetch("never-ran") is None


async def test_series_exist_at_zero_from_start(
    fake_x: Any, make_settings: Any, redis: Any, tmp_path: Path
) -> None:
    """Before any run, /metrics already has every job's counters by every known kind, the drift
    counters, the silence gauges and the canary, so dashboards show 0 and not "No data"."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    await TwscrapeAccounts((data_dir / "scraper-accounts.db").absolute()).upsert_cookies(
        "acc1", "auth_token=t1; ct0=c1"
    )
    job = {
        "name": "py", "kind": "search", "target": "python", "interval_s": 3600,
        "silent_after_s": 7200, "draft": {"template": "hi", "as_account": "team"},
    }  # fmt: skip
    settings = make_settings(
        data_dir=data_dir,
        proxy_file=tmp_path / "none.txt",
        scraper={
            "graphql_url_override": fake_x.url,
            "jobs": [job],
            "canary": {"target": "python", "interval_s": 3600},
        },
    )
    service = build_scraper_service(
        ServiceContext(settings=settings, redis=redis, data_dir=data_dir)
    )
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            await tg.start(service.run)
            text = generate_latest(service.registry).decode()
            service.request_stop()
    expected = [
        'tweets_fetched_total{scrape_job="py"} 0.0',
        'scraper_tweets_stored_total{scrape_job="py"} 0.0',
        'scraper_tweets_gone_total{scrape_job="py"} 0.0',
        'scraper_drafts_total{refusable="false",scrape_job="py"} 0.0',
        'scraper_job_silent_after_seconds{scrape_job="py"} 7200.0',
        *(f'scraper_run_errors_total{{kind="{k}",scrape_job="py"}} 0.0' for k in RUN_ERROR_KINDS),
        *(f'scraper_graphql_drift_total{{kind="{k}"}} 0.0' for k in DRIFT_KINDS),
        'scraper_graphql_responses_total{signal="not_found"} 0.0',
    ]
    assert [line for line in expected if line not in text] == []
    assert 'scraper_job_last_fetch_timestamp_seconds{scrape_job="py"}' in text
