"""ModerationService: serves the moderation app and keeps the request history in sync."""

from __future__ import annotations

from functools import partial

import anyio
from anyio.abc import TaskStatus
from redis.exceptions import RedisError

from twitstack.core.http_server import serve_asgi
from twitstack.core.logging import get_logger
from twitstack.core.metrics import new_registry
from twitstack.core.secrets import aget_secret
from twitstack.core.service import ServiceContext
from twitstack.moderation.app import create_app
from twitstack.moderation.deps import ModerationDeps
from twitstack.moderation.metrics import ModerationMetrics
from twitstack.moderation.queue_watch import ACTOR as WATCH_ACTOR
from twitstack.moderation.queue_watch import (
    APPROVED_AGE_EVERY_S,
    WATCH_EVERY_S,
    oldest_approved_age_s,
    oldest_pending_age_s,
    record_waiting,
)
from twitstack.moderation.quoted_posts import QuotedPosts, store_path
from twitstack.moderation.wiring import open_moderation_deps
from twitstack.moderation.x_accounts_ui import XAccountsUi, open_x_accounts_ui
from twitstack.writes.media_store import open_configured_store
from twitstack.writes.models import utcnow
from twitstack.writes.waiting import WaitingRecorder

log = get_logger("twitstack.moderation")
_BACKOFF_MAX_S = 10.0
_SESSION_PURGE_EVERY_S = 600.0
_X_HANDLES_EVERY_S = 5.0


class ModerationService:
    """The web UI + JSON API on api_host:api_port, with /metrics on the same port."""

    name = "moderation"
    metrics_port: int | None = None

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self.registry = new_registry()
        # Built once: run() is called again after a crash, and a second registration of the
        # same series in this registry would fail (and would reset the counters).
        self.metrics = ModerationMetrics(self.registry)
        self._stop = anyio.Event()
        self.bound_port: int | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        settings = self._ctx.settings
        known = tuple(account.name for account in settings.writer.accounts)
        async with open_moderation_deps(
            settings.moderation,
            redis=self._ctx.redis,
            data_dir=self._ctx.data_dir,
            registry=self.registry,
            metrics=self.metrics,
            known_accounts=known,
            ledger_retention_s=settings.writer.ledger_retention_s,
            events_maxlen=settings.writer.events_maxlen,
        ) as deps, open_x_accounts_ui(
            settings.writer, self._ctx.redis, aget_secret, env=settings.env,
            data_dir=settings.state_dir,
        ) as x_accounts:  # fmt: skip
            deps.x_accounts = x_accounts
            deps.media_store = lambda: open_configured_store(settings)
            deps.quoted_posts = QuotedPosts(
                store_path(settings.scraper.store_db, settings.state_dir)
            )
            deps.spend = settings.spend
            deps.media_min_free_bytes = settings.media.min_free_mb * 1024 * 1024
            deps.media_user_day_bytes = settings.media.max_upload_mb_per_user_day * 1024 * 1024
            app = create_app(deps)
            async with anyio.create_task_group() as tg:
                self.bound_port = await tg.start(
                    partial(
                        serve_asgi,
                        app,
                        host=settings.api_host,
                        port=settings.api_port,
                        name="moderation",
                    )
                )
                tg.start_soon(self._ingest_loop, deps)
                tg.start_soon(self._purge_loop, deps)
                tg.start_soon(self._queue_watch_loop, deps)
                tg.start_soon(self._x_handles_loop, deps, x_accounts)
                log.info("moderation.started", host=settings.api_host, port=self.bound_port)
                task_status.started()
                await self._stop.wait()
                tg.cancel_scope.cancel()
        log.info("moderation.stopped")

    async def _ingest_loop(self, deps: ModerationDeps) -> None:
        """Follow the ledger's event stream; Redis outages back off instead of crashing."""
        backoff = 0.5
        prepared = False
        while not self._stop.is_set():
            try:
                if not prepared:
                    await deps.history.prepare()
                    prepared = True
                await deps.history.sync_once(block_ms=deps.settings.history_poll_block_ms)
                backoff = 0.5
            except (RedisError, OSError) as exc:
                log.warning(
                    "moderation.history_ingest_failed", error=type(exc).__name__, retry_in=backoff
                )
                await anyio.sleep(backoff)
                backoff = min(_BACKOFF_MAX_S, backoff * 2)
            except Exception:
                # Unreadable data is quarantined by the ingester; anything else is a bug, which
                # must not take the web UI down with it (nor crash-loop the service).
                log.exception("moderation.history_ingest_crashed", retry_in=_BACKOFF_MAX_S)
                await anyio.sleep(_BACKOFF_MAX_S)

    async def _queue_watch_loop(self, deps: ModerationDeps) -> None:
        """Record what waits on write_queue, so it can be approved while no writer runs."""
        recorder = WaitingRecorder(self._ctx.redis, deps.decisions.ledger, actor=WATCH_ACTOR)
        sampled_at = -APPROVED_AGE_EVERY_S
        while not self._stop.is_set():
            try:
                await record_waiting(recorder, deps.history)
                if anyio.current_time() - sampled_at >= APPROVED_AGE_EVERY_S:
                    sampled_at = anyio.current_time()
                    age = await oldest_approved_age_s(
                        self._ctx.redis, deps.decisions.ledger, utcnow()
                    )
                    self.metrics.oldest_approved_age.set(age)
                    pending = await oldest_pending_age_s(self._ctx.redis, utcnow())
                    self.metrics.oldest_pending_age.set(pending)
            except (RedisError, OSError) as exc:
                log.warning("moderation.queue_watch_failed", error=type(exc).__name__)
            await anyio.sleep(WATCH_EVERY_S)

    async def _x_handles_loop(self, deps: ModerationDeps, x_accounts: XAccountsUi) -> None:
        """Keep the handles the pages show beside account labels current (other replicas and
        the CLI connect accounts too); Redis outages only leave them stale."""
        shown = deps.templates.globals["x_handles"]
        assert isinstance(shown, dict)  # render.new_environment puts a dict there
        while not self._stop.is_set():
            try:
                await x_accounts.refresh_handles(shown)
            except (RedisError, OSError) as exc:
                log.warning("moderation.x_handles_failed", error=type(exc).__name__)
            await anyio.sleep(_X_HANDLES_EVERY_S)

    async def _purge_loop(self, deps: ModerationDeps) -> None:
        while not self._stop.is_set():
            purged = await deps.sessions.purge_expired()
            if purged:
                log.info("moderation.sessions_purged", count=purged)
            await anyio.sleep(_SESSION_PURGE_EVERY_S)


def build_moderation_service(ctx: ServiceContext) -> ModerationService:
    """The supervisor's builder for the moderation service."""
    return ModerationService(ctx)
