"""The writer service: N workers consuming write_queue reliably, plus its background loops."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import anyio
import httpx
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import RedisError

from twitstack.core.config import Settings
from twitstack.core.logging import get_logger
from twitstack.core.metrics import new_registry
from twitstack.core.redis_access import (
    ACL_RECIPE,
    AccessNeeds,
    RedisPermissionError,
    is_permission_error,
    missing_permissions,
)
from twitstack.core.secrets import aget_secret
from twitstack.core.service import ServiceContext
from twitstack.writer.account_health import AccountHealth
from twitstack.writer.crashpoints import crash_point
from twitstack.writer.executor import RequestExecutor
from twitstack.writer.inflight import InFlight
from twitstack.writer.intake import RequestIntake
from twitstack.writer.journal import WriterJournal
from twitstack.writer.lean_transport import lean_transport_for
from twitstack.writer.media_upload import (
    MEDIA_CACHE_KEY_FILE,
    MediaUploader,
    load_or_create_cache_key,
)
from twitstack.writer.message_handler import MessageHandler
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.ratelimit import AccountPauses, RateLimitBudgets
from twitstack.writer.reconcile import Reconciler
from twitstack.writer.spend_ledger import SpendLedger, writer_accounts
from twitstack.writer.sweeps import expire_due, prune_lapsed, sample_depths
from twitstack.writer.tokens import SecretLookup, TokenManager
from twitstack.writer.xapi_client import XApiClient
from twitstack.writer.zero_series import start_at_zero
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.media_store import open_configured_store
from twitstack.writes.models import utcnow
from twitstack.writes.quarantine import Quarantine
from twitstack.writes.queue import (
    POISON_MESSAGE_REASON,
    POISON_REASON,
    RecoveryReport,
    ReliableQueue,
)
from twitstack.writes.schedule import WriteSchedule
from twitstack.writes.signing import ApprovalVerifier
from twitstack.writes.text import load_text_rules, text_rules_loaded
from twitstack.writes.token_store import keyring_source

_log = get_logger("twitstack.writer")
_BACKOFF_START_S = 0.1


class WriterService:
    """Executes approved write requests on X, effectively once, across any number of replicas."""

    name = "writer"

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        secret: SecretLookup = aget_secret,
    ) -> None:
        self._settings = settings
        self._config = settings.writer
        self._redis = redis
        self._clock = clock
        self._transport = transport
        self._secret = secret
        self.registry: CollectorRegistry = new_registry()
        self.metrics = WriterMetrics(self.registry)
        self.quarantine = Quarantine(redis, self.metrics.quarantined, service="writer")
        start_at_zero(self.metrics, [account.name for account in self._config.accounts])
        self.metrics_port: int | None = self._config.metrics_port
        self.consumer_id = self._config.consumer_id or f"{socket.gethostname()}-{os.getpid()}"
        self._stopping = False
        self._stop_event: anyio.Event | None = None
        self.held = InFlight()
        # Which transport the workers' clients got ("lean" or "httpx"): logged at start.
        self.worker_http = "httpx"

    def request_stop(self) -> None:
        """Stop taking messages; run() returns once in-flight requests are settled."""
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open the HTTP client, recover this consumer's old messages, then work until stopped."""
        self._stop_event = anyio.Event()
        # After a crash (the supervisor runs us again) recover_own() requeues what the old
        # workers held; their bookkeeping must not make reclaim_orphans() skip new messages.
        self.held = InFlight()
        if self._stopping:
            self._stop_event.set()
        config = self._config
        async with contextlib.AsyncExitStack() as clients:
            # One TLS context for every client: building one costs ~20 ms of CPU.
            verify = httpx.create_ssl_context()
            # This client serves the reconciler and token refreshes; each worker has its own.
            http = await clients.enter_async_context(self._http_client(2, verify))
            self._build(XApiClient(http, base_url=config.x_api_base_url))
            intakes = [
                self._intake_for(await self._worker_client(clients, http, verify))
                for _ in range(config.concurrency)
            ]
            await self._until_redis_answers("start", self._start)
            _log.info(
                "writer.started",
                consumer=self.consumer_id,
                concurrency=config.concurrency,
                accounts=[account.name for account in config.accounts],
                http_transport=self.worker_http,
            )
            task_status.started()
            async with anyio.create_task_group() as background:
                for name, loop, interval in self._loops():
                    background.start_soon(self._every, name, loop, interval)
                async with anyio.create_task_group() as workers:
                    for index, intake in enumerate(intakes):
                        workers.start_soon(self._work, index, intake)
                # Workers return only after a stop request, with their messages settled.
                background.cancel_scope.cancel()
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._leave()
        _log.info("writer.stopped", consumer=self.consumer_id)

    def _build(self, client: XApiClient) -> None:
        config = self._config
        redis = self._redis
        # Every sweep reading through this ledger quarantines what it cannot read.
        self.ledger = RequestLedger(
            redis,
            retention_s=config.ledger_retention_s,
            events_maxlen=config.events_maxlen,
            quarantine=self.quarantine,
        )
        self.queue = ReliableQueue(
            redis, self.consumer_id, heartbeat_ttl_s=config.heartbeat_ttl_s, ledger=self.ledger
        )
        self.schedule = WriteSchedule(redis)
        self.budgets = RateLimitBudgets(redis, clock=self._clock)
        self.spend = SpendLedger(
            redis, self._settings.spend, self.metrics, clock=self._clock,
            quarantine=self.quarantine,
        )  # fmt: skip
        self.journal = WriterJournal(
            self.ledger, redis, self.metrics, self.budgets, actor=f"writer:{self.consumer_id}"
        )
        self.tokens = TokenManager(
            redis, client, config.accounts, clock=self._clock, secret=self._secret,
            leeway_s=config.token_refresh_leeway_s, metrics=self.metrics,
            keyring=keyring_source(
                self._secret, env=self._settings.env, data_dir=self._settings.state_dir
            ),
            lookup=config.account,
            spend=lambda account: self.spend.record(account, "token_refresh"),
        )  # fmt: skip
        verifier = (
            ApprovalVerifier(config.approval_public_keys, max_age_s=config.approval_max_age_s)
            if config.approval_public_keys
            else None
        )
        self._verifier = verifier
        self._pauses = AccountPauses(redis, clock=self._clock)
        self.account_health = AccountHealth(redis, config, self._pauses, self.metrics)
        settings = self._settings
        # The store is opened per upload: a writer that never sees media never needs S3.
        self.media = MediaUploader(
            redis, settings.media, lambda: open_configured_store(settings), clock=self._clock,
            cache_key_bytes=load_or_create_cache_key(settings.state_dir / MEDIA_CACHE_KEY_FILE),
        )  # fmt: skip
        self._messages = MessageHandler(
            self.queue, self.journal, self.media, self.account_health, self.quarantine, self.metrics
        )
        self.reconciler = Reconciler(
            redis, self.journal, client, self.tokens, config, self.metrics,
            spend=self.spend, quarantine=self.quarantine, started_at=utcnow(),
        )  # fmt: skip

    def _http_client(
        self, connections: int, verify: ssl.SSLContext, *, lean: bool = False
    ) -> httpx.AsyncClient:
        config = self._config
        transport = self._transport
        if lean and transport is None and config.http_transport == "lean":
            # None (httpx's own transport) off asyncio or when the environment names a proxy.
            transport = lean_transport_for(verify)
            self.worker_http = "httpx" if transport is None else "lean"
        return httpx.AsyncClient(
            timeout=httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(max_connections=connections),
            transport=transport,
            verify=verify,
        )

    async def _worker_client(
        self, clients: contextlib.AsyncExitStack, shared: httpx.AsyncClient, verify: ssl.SSLContext
    ) -> XApiClient:
        # One connection per worker, in its own pool: a shared pool of N connections is
        # scanned on every request (httpcore), which cost more CPU than the request itself;
        # the lean transport (lean_transport.py) also drops httpcore's per-request layers.
        # An injected transport (tests) is shared as given: each client would close it.
        http = shared
        if self._transport is None:
            http = await clients.enter_async_context(self._http_client(1, verify, lean=True))
        return XApiClient(http, base_url=self._config.x_api_base_url)

    def _intake_for(self, client: XApiClient) -> RequestIntake:
        """A worker's own executor over its own HTTP client (the rest is shared)."""
        config = self._config
        executor = RequestExecutor(
            self.journal, client, self.tokens, self.budgets, self._pauses, self._verifier,
            config, self.metrics, clock=self._clock, spend=self.spend, media=self.media,
            stopping=lambda: self._stopping,
        )  # fmt: skip
        return RequestIntake(
            self.journal, executor, self.metrics, require_approval=config.require_approval
        )

    async def _start(self) -> None:
        # Before the first message is taken, so no message waits in flight on the import. The
        # daemon loads them before its event loop starts (supervisor.load_before_loop); a
        # writer started another way loads them here, in a thread, off the event loop.
        if not text_rules_loaded():
            await anyio.to_thread.run_sync(load_text_rules)
        # A missing or malformed sealing key ring fails the start here (KeyRingError).
        await self.tokens.open()
        await self.account_health.sync()
        self.spend.warn_unknown(writer_accounts(self._config))
        await self.queue.heartbeat()
        report = await self.queue.recover_own()
        if report.requeued or report.dead_lettered:
            _log.warning(
                "writer.recovered_own_messages",
                consumer=self.consumer_id,
                requeued=report.requeued,
                dead_lettered=report.dead_lettered,
            )
        self._count_poison(report)

    def _loops(self) -> list[tuple[str, Callable[[], Awaitable[object]], float]]:
        config = self._config
        return [
            ("heartbeat", self.queue.heartbeat, config.heartbeat_interval_s),
            ("x_accounts", self.account_health.sync, 2.0),
            ("recover_dead", self._recover_dead, config.recovery_interval_s),
            ("reclaim_orphans", self._reclaim_orphans, config.recovery_interval_s),
            ("promote", self._promote, config.schedule_poll_s),
            ("reconcile", self.reconciler.sweep, config.reconcile_interval_s),
            ("expire", functools.partial(expire_due, self._redis, self.journal, self.quarantine),
             config.reconcile_interval_s),
            ("prune_lapsed", functools.partial(prune_lapsed, self.journal),
             config.reconcile_interval_s),
            ("sample_depths", self._sample_depths, 5.0),
            ("spend_gauges", lambda: self.spend.refresh(writer_accounts(config)), 15.0),
        ]  # fmt: skip

    async def _sample_depths(self) -> None:
        # Connected accounts too (they come and go), so each has its paused gauge.
        names = writer_accounts(self._config)
        await sample_depths(self._redis, self.queue, self.metrics, self._pauses, names)

    async def _promote(self) -> int:
        return await self.schedule.promote_due(now=datetime.fromtimestamp(self._clock(), UTC))

    async def _recover_dead(self) -> None:
        report = await self.queue.recover_dead()
        if report.consumers:
            _log.warning(
                "writer.recovered_dead_consumers",
                consumers=report.consumers,
                requeued=report.requeued,
                dead_lettered=report.dead_lettered,
            )
        self._count_poison(report)

    def _count_poison(self, report: RecoveryReport) -> None:
        if report.dead_lettered:
            self.metrics.dead_letters.labels(reason=POISON_REASON).inc(report.dead_lettered)
        for request in report.flagged:
            # Moved (or recorded) needs_review in the dead-lettering Lua call itself.
            self.journal.log_recorded(request, POISON_MESSAGE_REASON)

    async def _every(
        self, name: str, loop: Callable[[], Awaitable[object]], interval_s: float
    ) -> None:
        while True:
            try:
                await self._until_redis_answers(name, loop)
            except Exception:
                # A bug in housekeeping must not take the consumers down with it.
                _log.exception("writer.loop_failed", loop=name)
            await anyio.sleep(interval_s)

    async def _until_redis_answers(self, what: str, step: Callable[[], Awaitable[object]]) -> None:
        """Run `step`, retrying through Redis outages with capped, logged backoff.

        A refusal by the user's ACL is no outage: at start it fails the start; later it is
        logged as an error with what the user lacks, counted, and retried as slowly as an
        outage (an operator may fix the ACL while the writer runs).
        """
        delay = _BACKOFF_START_S
        while True:
            try:
                await step()
                return
            except (RedisError, OSError) as exc:
                if is_permission_error(exc):
                    lacking = await self._permission_refused(what, exc)
                    if what == "start":
                        raise RedisPermissionError(
                            "\n".join([f"writer: Redis refused the start: {exc}", *lacking])
                        ) from None
                else:
                    self.metrics.redis_errors.inc()
                    _log.warning(
                        "writer.redis_unavailable",
                        step=what,
                        error=type(exc).__name__,
                        retry_in_s=delay,
                    )
                self.metrics.worker_backoff.set(delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, self._config.redis_backoff_max_s)
            finally:
                self.metrics.worker_backoff.set(0)

    async def _permission_refused(self, what: str, exc: Exception) -> list[str]:
        """Count and log a NOPERM with the key patterns and commands the user lacks."""
        self.metrics.redis_permission_errors.inc()
        try:
            lacking = await missing_permissions(self._redis, self._access_needs())
        except (RedisError, OSError) as probe_error:
            lacking = [f"(could not probe the ACL: {probe_error})"]
        _log.error(
            "writer.redis_permission_denied",
            step=what,
            error=str(exc),
            lacking=lacking,
            fix=ACL_RECIPE,
        )
        return lacking

    async def _cool_down(self) -> None:
        """Wait `redis_backoff_max_s`, or less if a stop is requested meanwhile."""
        with anyio.move_on_after(self._config.redis_backoff_max_s):
            if self._stop_event is not None:
                await self._stop_event.wait()
            else:
                await anyio.sleep(self._config.redis_backoff_max_s)

    @staticmethod
    def _access_needs() -> AccessNeeds:
        from twitstack.ops.redis_acl import service_access_needs

        return service_access_needs(["writer"])

    async def _work(self, index: int, intake: RequestIntake) -> None:
        unreleased: list[bytes] = []
        refused = False
        while not self._stopping or unreleased:
            if unreleased:
                # A Redis error interrupted this message: hand it back before anything else.
                release = functools.partial(self.queue.release, unreleased[0])
                await self._until_redis_answers("release", release)
                self.held.drop(unreleased.pop())
                if refused:
                    # Refused for the ACL: taking the message again at once would be refused
                    # again; wait as long as for an outage.
                    refused = False
                    await self._cool_down()
                continue
            try:
                taken = await self.queue.take(self._config.take_timeout_s)
            except (RedisError, OSError) as exc:
                if is_permission_error(exc):
                    await self._permission_refused("take", exc)
                    await self._cool_down()
                    continue
                await self._until_redis_answers("take", self._redis.ping)
                continue
            if taken is None:
                continue
            self.held.hold(taken)
            crash_point("after_take")
            try:
                # Shielded: a stop (or cancel) must not cut a request between sending and settled.
                with anyio.CancelScope(shield=True):
                    await self._messages.handle(taken, intake)
            except (RedisError, OSError) as exc:
                if is_permission_error(exc):
                    refused = True
                    await self._permission_refused("message", exc)
                else:
                    _log.warning(
                        "writer.message_interrupted", worker=index, error=type(exc).__name__
                    )
                unreleased.append(taken)
            else:
                self.held.drop(taken)

    async def _reclaim_orphans(self) -> None:
        released = await self.held.reclaim(self.queue)
        if released:
            _log.warning("writer.orphans_requeued", consumer=self.consumer_id, count=released)

    async def _leave(self) -> None:
        try:
            await self.queue.leave()
        except (RedisError, OSError):
            _log.warning("writer.leave_failed", consumer=self.consumer_id)


def build_writer_service(ctx: ServiceContext) -> WriterService:
    """The supervisor's builder: a WriterService over the shared Redis client."""
    return WriterService(ctx.settings, ctx.redis)
