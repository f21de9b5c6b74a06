"""ScraperService: opens the store, archive and account pool, then runs jobs on schedule."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry

from twitstack.core.logging import get_logger
from twitstack.core.metrics import new_registry
from twitstack.scraper.archive import TweetArchive, open_archive
from twitstack.scraper.canary import CanaryQuery
from twitstack.scraper.db import open_database
from twitstack.scraper.health import AccountHealth
from twitstack.scraper.jobs import Job, load_jobs
from twitstack.scraper.metrics import ScraperMetrics
from twitstack.scraper.paths import resolve
from twitstack.scraper.proxies import ProxyPool
from twitstack.scraper.runner import JobRunner, make_observer
from twitstack.scraper.schedule import JobSchedule
from twitstack.scraper.store import TweetStore
from twitstack.scraper.twscrape_adapter import (
    QUEUES_BY_JOB_KIND,
    TwscrapeAccounts,
    TwscrapeClient,
    configure_twscrape,
    load_user_agents,
    set_transport_observer,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from twitstack.core.config import Settings
    from twitstack.core.service import ServiceContext

log = get_logger("twitstack.scraper")
_HEALTH_TICK_S = 60.0
_DRIFT_PAUSE_S = 3600.0  # after GraphQL drift, retrying before an upgrade only burns accounts


@dataclass
class ScraperParts:
    """Everything one scraper process works with, opened together and closed together."""

    store: TweetStore
    accounts: TwscrapeAccounts
    health: AccountHealth
    runner: JobRunner
    jobs: list[Job]
    archive: TweetArchive | None
    canary: CanaryQuery | None = None


@asynccontextmanager
async def open_scraper(
    settings: Settings,
    redis: Redis,
    data_dir: Path,
    metrics: ScraperMetrics,
    *,
    holder: str = "scraper",
) -> AsyncIterator[ScraperParts]:
    """Open store, archive and pool for `settings`; used by the service and the CLI."""
    cfg = settings.scraper
    configure_twscrape(graphql_url=cfg.graphql_url_override)
    proxies = ProxyPool.load(settings.proxy_file)
    jobs = load_jobs(cfg, proxy_groups=proxies.groups.keys())
    accounts_db = resolve(cfg.accounts_db, data_dir)
    accounts = TwscrapeAccounts(accounts_db)
    health = AccountHealth(
        accounts,
        metrics,
        suspect_window_s=cfg.suspect_error_window_s,
        probe_screen_name=cfg.probe_screen_name,
        scratch_dir=data_dir / "scraper-probes",
        proxies=proxies,
    )
    kinds = [job.kind for job in jobs] + ([cfg.canary.kind] if cfg.canary is not None else [])
    health.watch_queues(queue for kind in kinds for queue in QUEUES_BY_JOB_KIND[kind])
    observer = make_observer(health)
    set_transport_observer(observer)
    client = TwscrapeClient(
        accounts_db,
        wait_timeout_s=cfg.account_wait_timeout_s,
        wait_interval_s=cfg.account_wait_interval_s,
        observer=observer,
    )
    async with AsyncExitStack() as stack:
        conn = await stack.enter_async_context(open_database(resolve(cfg.store_db, data_dir)))
        archive = None
        if cfg.archive_enabled:
            archive = await stack.enter_async_context(
                open_archive(
                    bucket=settings.minio_bucket,
                    prefix=cfg.archive_prefix,
                    region=settings.minio_region,
                    endpoint_url=settings.minio_endpoint,
                    access_key_id=_secret(settings.minio_access_key),
                    secret_access_key=_secret(settings.minio_secret_key),
                    attempts=cfg.archive_attempts,
                )
            )
        store = TweetStore(conn)
        runner = JobRunner(
            client=client,
            store=store,
            health=health,
            metrics=metrics,
            redis=redis,
            archive=archive,
            proxies=proxies,
            lease_ttl_s=cfg.lease_ttl_s,
            holder=holder,
            batch_size=cfg.upsert_batch_size,
        )
        canary = None
        if cfg.canary is not None:
            canary = CanaryQuery(cfg.canary, client=client, metrics=metrics, proxies=proxies)
        yield ScraperParts(store, accounts, health, runner, jobs, archive, canary)


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if getter is not None else None


class ScraperService:
    """The supervised scraper: job loops, account health sweeps and retention."""

    name = "scraper"

    def __init__(self, settings: Settings, redis: Redis, data_dir: Path) -> None:
        self._settings = settings
        self._redis = redis
        self._data_dir = data_dir
        self.registry: CollectorRegistry = new_registry()
        self.metrics = ScraperMetrics(self.registry)
        self.metrics_port: int | None = settings.scraper.metrics_port
        self._stop = anyio.Event()
        self._drift_until = 0.0
        self._rng = random.Random()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        holder = f"{socket.gethostname()}:{id(self):x}"
        async with open_scraper(
            self._settings, self._redis, self._data_dir, self.metrics, holder=holder
        ) as parts:
            # Locks left by a crash or a cancelled request would idle accounts for 15 minutes.
            await parts.accounts.reset_locks()
            # Drafts committed by a process that died before pushing them (no job runs yet).
            pushed = await parts.runner.deliver_drafts()
            if pushed:
                log.info("scraper.drafts_recovered", drafts=pushed)
            await parts.health.refresh_metrics()
            await self._declare_jobs(parts)
            if parts.jobs or parts.canary is not None or await parts.accounts.list_accounts():
                # It will send requests: twscrape's user-agent list is built now, off the event
                # loop; a scraper with nothing to do never holds it (twscrape_adapter.user_agents).
                await anyio.to_thread.run_sync(load_user_agents)
            async with anyio.create_task_group() as tg:
                for job in parts.jobs:
                    tg.start_soon(self._job_loop, parts, job)
                if parts.canary is not None:
                    tg.start_soon(self._canary_loop, parts.canary)
                tg.start_soon(self._health_loop, parts)
                tg.start_soon(self._retention_loop, parts)
                log.info("scraper.started", jobs=[j.name for j in parts.jobs])
                task_status.started()
                await self._stop.wait()
                # Loops notice the stop between runs; in-flight runs finish (never cancelled
                # mid-request: that would leave accounts locked for 15 minutes).
        log.info("scraper.stopped")

    async def _declare_jobs(self, parts: ScraperParts) -> None:
        """Every job's series from the start: counters at 0, its interval and silence limit,
        and when it last found anything (a restart must not reset the silence clock)."""
        started = time.time()
        for job in parts.jobs:
            m = self.metrics
            m.declare_job(job.name, drafts=job.draft is not None)
            m.job_interval.labels(scrape_job=job.name).set(job.interval_s)
            m.job_silent_after.labels(scrape_job=job.name).set(job.silent_after_s)
            last = await parts.store.last_fetch(job.name)
            m.job_last_fetch.labels(scrape_job=job.name).set(last or started)

    async def _canary_loop(self, canary: CanaryQuery) -> None:
        while True:
            try:
                await canary.run()
            except Exception as exc:  # like a job run: one failure must not end the loop
                log.exception("scraper.canary_crashed", error=str(exc))
            if not await self._sleep_until(anyio.current_time() + canary.spec.interval_s):
                return

    async def _sleep_until(self, when: float) -> bool:
        """Sleep until `when` or until stopped; True if it is time to work."""
        with anyio.move_on_after(max(0.0, when - anyio.current_time())):
            await self._stop.wait()
        return not self._stop.is_set()

    async def _job_loop(self, parts: ScraperParts, job: Job) -> None:
        schedule = JobSchedule(job.interval_s, self._settings.scraper.jitter_fraction, self._rng)
        next_at = schedule.first_run_at(anyio.current_time())
        while await self._sleep_until(next_at):
            started = anyio.current_time()
            if self._drift_until > started:
                log.warning("scraper.run_paused", job=job.name, reason="graphql drift")
            else:
                try:
                    outcome = await parts.runner.run(job)
                    if outcome.error_kind == "graphql_drift":
                        self._drift_until = anyio.current_time() + _DRIFT_PAUSE_S
                except Exception as exc:  # a Redis or disk hiccup must not kill the loop
                    log.exception("scraper.run_crashed", job=job.name, error=str(exc))
            next_at = schedule.next_run_at(started, anyio.current_time())

    async def _health_loop(self, parts: ScraperParts) -> None:
        cfg = self._settings.scraper
        now = anyio.current_time()
        next_active, next_quarantined = now + cfg.health_probe_interval_s, now
        while await self._sleep_until(anyio.current_time() + _HEALTH_TICK_S):
            now = anyio.current_time()
            active_due, quarantined_due = now >= next_active, now >= next_quarantined
            try:
                await parts.health.apply_pending()
                await parts.health.probe_due(
                    include_active=active_due, include_quarantined=quarantined_due
                )
                await parts.health.refresh_metrics()
            except Exception as exc:
                log.exception("scraper.health_failed", error=str(exc))
            if active_due:
                next_active = now + cfg.health_probe_interval_s
            if quarantined_due:
                next_quarantined = now + cfg.quarantine_reprobe_interval_s

    async def _retention_loop(self, parts: ScraperParts) -> None:
        days = self._settings.scraper.retention_days
        if days <= 0:
            return
        while await self._sleep_until(anyio.current_time() + 3600):
            purged = await parts.store.purge_older_than(time.time() - days * 86400)
            if purged:
                log.info("scraper.retention_purged", tweets=purged)


def build_scraper_service(ctx: ServiceContext) -> ScraperService:
    """The supervisor's builder for the scraper."""
    return ScraperService(ctx.settings, ctx.redis, ctx.data_dir)


# `resolve` stays importable from here for twitstack.ops.doctor_checks (its home is paths.py).
__all__ = ["ScraperParts", "ScraperService", "build_scraper_service", "open_scraper", "resolve"]
