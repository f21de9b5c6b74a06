"""One run of one job: lease, recover, fetch page by page, store with drafts, judge, archive."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from twitstack.core.logging import get_logger
from twitstack.scraper.archive import TweetArchive
from twitstack.scraper.drafts import build_drafts, outbox_messages
from twitstack.scraper.health import AccountHealth
from twitstack.scraper.jobs import Job
from twitstack.scraper.lease import JobLease, hold_lease
from twitstack.scraper.metrics import ScraperMetrics
from twitstack.scraper.models import (
    DRIFT_SIGNALS,
    GraphQLDriftError,
    NoAccountAvailableError,
    Page,
    ResponseEvent,
    ScrapedTweet,
    Signal,
)
from twitstack.scraper.outbox import DraftOutbox, OutboxMessage
from twitstack.scraper.proxies import ProxyPool
from twitstack.scraper.store import TweetStore
from twitstack.scraper.twscrape_adapter import ResponseObserver, TwscrapeClient
from twitstack.writes.quarantine import Quarantine

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = get_logger("twitstack.scraper.runner")
# The events of the run in progress in this task: twscrape reports from inside our await.
_run_events: ContextVar[list[ResponseEvent] | None] = ContextVar("scraper_run_events", default=None)
_ERRORS = frozenset(
    {Signal.SUSPENDED, Signal.AUTH_FAILED, Signal.API_ERROR, Signal.SERVER_ERROR, Signal.BLOCKED}
)


def make_observer(health: AccountHealth) -> ResponseObserver:
    """The process-wide observer: health tracking plus the current run's event list."""

    def observe(event: ResponseEvent) -> None:
        health.observe(event)
        events = _run_events.get()
        if events is not None:
            events.append(event)

    return observe


@dataclass(frozen=True, slots=True)
class _Batch:
    """What one fetch step brought: timeline tweets, the quoted tweets they carry (stored, never
    drafted, not in `fetched`) and ids X says are gone (by-id jobs)."""

    tweets: list[ScrapedTweet]
    embedded: list[ScrapedTweet] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    job: str
    run_id: int | None
    status: str  # ok | failed | skipped
    fetched: int = 0
    new: int = 0
    duplicates: int = 0
    error_kind: str | None = None
    drafts: int = 0
    gone: int = 0


class JobRunner:
    """Runs jobs; every dependency is opened by the caller and handed in."""

    def __init__(
        self,
        *,
        client: TwscrapeClient,
        store: TweetStore,
        health: AccountHealth,
        metrics: ScraperMetrics,
        redis: Redis,
        archive: TweetArchive | None = None,
        proxies: ProxyPool | None = None,
        lease_ttl_s: float = 60.0,
        holder: str = "scraper",
        batch_size: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._store = store
        self._health = health
        self._metrics = metrics
        self._redis = redis
        self._archive = archive
        self._proxies = proxies or ProxyPool()
        self._lease_ttl_s = lease_ttl_s
        self._holder = holder
        self._batch_size = batch_size
        self._clock = clock
        self.outbox = DraftOutbox(store.connection, redis, on_pushed=self._count_pushed)
        self.quarantine = Quarantine(redis, metrics.quarantined, service="scraper")

    async def run(self, job: Job) -> RunOutcome:
        """Run `job` once unless another replica holds its lease."""
        lease = JobLease(self._redis, job.name, ttl_s=self._lease_ttl_s, holder=self._holder)
        async with hold_lease(lease) as won:
            if not won:
                log.info("scraper.run_skipped", job=job.name, reason="lease held elsewhere")
                return RunOutcome(job.name, None, "skipped", error_kind="lease_held")
            return await self._run_held(job)

    async def _run_held(self, job: Job) -> RunOutcome:
        started = self._clock()
        # We hold the lease, so any run still marked running died with its process.
        crashed = await self._store.mark_crashed_runs(job.name, now=started)
        if crashed:
            log.warning("scraper.runs_recovered", job=job.name, run_ids=crashed)
        # Drafts a crash left committed but unpushed; the writer dedupes any pushed twice.
        await self.deliver_drafts(job.name)
        await self.archive_pending(job.name)
        state = await self._store.job_state(job.name)
        since_id = int(state.watermark) if state.watermark else 0
        run_id = await self._store.begin_run(job.name, now=started)
        events: list[ResponseEvent] = []
        token = _run_events.set(events)
        fetched = new = duplicates = drafts = gone = 0
        top_id = since_id
        error_kind: str | None = None
        pending: list[ScrapedTweet] = []
        draftable: set[int] = set()  # timeline tweets; quoted ones ride along undrafted

        def draft(fresh: list[ScrapedTweet]) -> list[OutboxMessage]:
            fresh = [t for t in fresh if t.id in draftable]
            if job.draft is None or not fresh:
                return []
            now = datetime.fromtimestamp(self._clock(), tz=UTC)
            built = build_drafts(
                job.draft, fresh, job=job.name, now=now, limit=job.draft.max_per_run - drafts
            )
            return outbox_messages(built, job=job.name, run_id=run_id)

        async def flush() -> None:
            nonlocal new, duplicates, drafts
            result = await self._store.upsert(
                pending, job=job.name, run_id=run_id, now=self._clock(), drafts=draft
            )
            new += len(result.new)
            duplicates += result.duplicates
            drafts += result.drafts
            pending.clear()
            if result.drafts:
                await self.deliver_drafts(job.name)

        try:
            async with aclosing(self._batches(job, since_id)) as batches:
                async for batch in batches:
                    if batch.gone:
                        gone += await self._mark_gone(job, batch.gone)
                    fetched += len(batch.tweets)
                    top_id = max([top_id, *(t.id for t in batch.tweets)])
                    draftable.update(t.id for t in batch.tweets)
                    # Buffered up to batch_size: a crash loses only unstored tweets, which the
                    # unmoved watermark makes the next run fetch again.
                    pending.extend(batch.tweets)
                    pending.extend(batch.embedded)
                    if len(pending) >= self._batch_size:
                        await flush()
            if pending:
                await flush()
        except NoAccountAvailableError as exc:
            error_kind = "no_account"
            log.warning("scraper.no_account", job=job.name, error=str(exc))
        except GraphQLDriftError as exc:
            error_kind = "graphql_drift"  # counted (features_outdated) by the observer
            log.error("scraper.graphql_drift", job=job.name, error=str(exc))
        finally:
            _run_events.reset(token)
        await self._health.apply_pending()
        error_kind = error_kind or self._judge(fetched, events)
        status = "ok" if error_kind is None else "failed"
        finished = self._clock()
        await self._store.finish_run(
            job.name,
            run_id,
            now=finished,
            status=status,
            fetched=fetched,
            new=new,
            duplicates=duplicates,
            error=error_kind,
            # Only a complete run moves the watermark: a failed one is re-fetched next time.
            watermark=str(top_id) if status == "ok" and job.uses_watermark and top_id else None,
        )
        if job.proxy_group and any(e.signal is Signal.TRANSPORT for e in events):
            self._proxies.rotate(job.proxy_group)
        await self.archive_pending(job.name)
        self._record(job, status, error_kind, fetched, new, duplicates, finished - started)
        log.info(
            "scraper.run_finished", job=job.name, run_id=run_id, status=status, fetched=fetched,
            new=new, duplicates=duplicates, error_kind=error_kind, drafts=drafts, gone=gone,
        )  # fmt: skip
        return RunOutcome(
            job.name, run_id, status, fetched, new, duplicates, error_kind, drafts, gone
        )

    async def _mark_gone(self, job: Job, ids: list[int]) -> int:
        """Count and mark tweets X says are gone; they are not silently dropped."""
        marked = await self._store.mark_gone(ids, now=self._clock())
        self._metrics.tweets_gone.labels(scrape_job=job.name).inc(len(ids))
        log.info("scraper.tweets_gone", job=job.name, tweet_ids=ids, stored=marked)
        return len(ids)

    def _judge(self, fetched: int, events: list[ResponseEvent]) -> str | None:
        """Failures twscrape reports as success: blocks, and suspicious empty results."""
        signals = {e.signal for e in events}
        if Signal.BLOCKED in signals:
            return "blocked"  # twscrape aborted the request and yielded nothing more
        drift = sorted(s.value for s in signals & DRIFT_SIGNALS - {Signal.FEATURES_OUTDATED})
        if Signal.FEATURES_OUTDATED in signals:
            return "graphql_drift"  # what pauses the jobs until twscrape is upgraded
        if drift:
            # twscrape gave up on a request (404s, transaction ids) and yielded what it had:
            # the run is incomplete whatever it fetched, so the watermark must not move.
            return f"graphql_{drift[0]}"
        if fetched == 0 and (
            signals & _ERRORS or any(self._health.is_suspect(e.username) for e in events)
        ):
            return "suspect_empty"
        return None

    def _record(
        self, job: Job, status: str, kind: str | None, fetched: int, new: int, dup: int, s: float
    ) -> None:
        m = self._metrics
        m.tweets_fetched.labels(scrape_job=job.name).inc(fetched)
        m.tweets_stored.labels(scrape_job=job.name).inc(new)
        m.tweets_duplicate.labels(scrape_job=job.name).inc(dup)
        m.run_duration.labels(scrape_job=job.name).observe(s)
        if fetched:
            m.job_last_fetch.labels(scrape_job=job.name).set(self._clock())
        if status == "ok":
            m.last_success.labels(scrape_job=job.name).set(self._clock())
        elif kind:
            m.run_errors.labels(scrape_job=job.name, kind=kind).inc()

    async def deliver_drafts(self, job: str | None = None) -> int:
        """Push the outbox's drafts (of one job) to write_queue; a Redis failure leaves them
        in the outbox for the next attempt instead of failing the run."""
        try:
            return await self.outbox.deliver(job)
        except (RedisError, OSError) as exc:
            self._metrics.run_errors.labels(scrape_job=job or "-", kind="drafts_push").inc()
            log.warning("scraper.drafts_push_failed", job=job, error=str(exc))
            return 0

    def _count_pushed(self, message: OutboxMessage) -> None:
        refusable = "true" if message.refusable else "false"
        self._metrics.drafts.labels(scrape_job=message.job, refusable=refusable).inc()
        log.info(
            "scraper.draft_enqueued", job=message.job, request_id=message.request_id, action="tweet"
        )

    async def archive_pending(self, job: str) -> None:
        """Archive every finished run not yet archived (this one, and any a crash left)."""
        if self._archive is None:
            return
        for run in await self._store.unarchived_runs(job):
            rows = await self._store.run_tweets(job, run.run_id)
            try:
                key = await self._archive.put_run(job, run.run_id, run.started_at, rows)
            except Exception as exc:  # any storage failure: retried next run
                self._metrics.run_errors.labels(scrape_job=job, kind="archive").inc()
                log.warning("scraper.archive_failed", job=job, run_id=run.run_id, error=str(exc))
                return
            await self._store.mark_archived(job, run.run_id, key)

    # fetching ---------------------------------------------------------------------------------

    async def _batches(self, job: Job, since_id: int) -> AsyncGenerator[_Batch, None]:
        proxy = self._proxies.current(job.proxy_group) if job.proxy_group else None
        remaining = job.limit
        if job.kind == "tweets":
            for tweet_id in job.tweet_ids[:remaining]:
                found = await self._client.lookup(tweet_id, proxy=proxy)
                if found.tweet is not None:
                    quoted = found.tweet.quoted
                    yield _Batch([found.tweet], [quoted] if quoted is not None else [])
                elif found.gone:
                    yield _Batch([], gone=[tweet_id])
            return
        pages = await self._pages(job, since_id, proxy)
        async with aclosing(pages) as stream:
            async for page in stream:
                for item in page.unreadable:
                    # Passed over: one tweet X (or a proxy) mangled must not fail every run.
                    ref = f"{job.name}:{item.ref}"
                    await self.quarantine.put("scraped_item", ref, item.reason, item.detail)
                tweets = [t for t in page.tweets if t.id > since_id]
                if job.kind == "replies":
                    target = int(job.target)
                    tweets = [t for t in tweets if t.in_reply_to_id == target]
                if tweets or page.embedded:
                    yield _Batch(tweets[:remaining], page.embedded)
                    remaining -= min(remaining, len(tweets))
                # Timelines are newest first: an old tweet on the page means we reached the
                # watermark; replies come in conversation order, so they are read to the end.
                reached = job.kind != "replies" and len(tweets) < len(page.tweets)
                if remaining <= 0 or reached:
                    return

    async def _pages(
        self, job: Job, since_id: int, proxy: str | None
    ) -> AsyncGenerator[Page, None]:
        c, limit = self._client, job.limit
        if job.kind == "search":
            query = f"{job.target} since_id:{since_id}" if since_id else job.target
            return c.search(query, limit=limit, proxy=proxy)
        if job.kind == "list":
            return c.list_tweets(int(job.target), limit=limit, proxy=proxy)
        if job.kind == "replies":
            return c.replies(int(job.target), limit=limit, proxy=proxy)
        user_id = int(job.target) if job.target.isdigit() else None
        if user_id is None:
            user_id = await c.user_id(job.target, proxy=proxy)
        if user_id is None:
            raise NoAccountAvailableError(f"user {job.target!r} not found (or no account answered)")
        return c.user_tweets(user_id, limit=limit, proxy=proxy)
