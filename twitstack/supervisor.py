"""The composition root: opens shared resources, starts the selected services, supervises them."""

from __future__ import annotations

import gc
import os
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import anyio
import stamina
import stamina.instrumentation
from anyio.abc import TaskStatus
from redis.asyncio import Redis

from twitstack.core.config import Settings
from twitstack.core.crash_injection import CRASH_KEY_PREFIX, CrashInjector
from twitstack.core.errors import CrashLoopError
from twitstack.core.logging import bind_service, get_logger
from twitstack.core.metrics import ServiceHealthMetrics
from twitstack.core.metrics_server import serve_metrics
from twitstack.core.redis import open_redis
from twitstack.core.sdnotify import SystemdNotifier
from twitstack.core.sections.supervisor import SupervisorSettings
from twitstack.core.service import Service, ServiceBuilder, ServiceContext
from twitstack.writes.text import load_text_rules

log = get_logger(__name__)

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl+C, and systemd's stop


def _build_scraper(context: ServiceContext) -> Service:
    from twitstack.scraper.service import build_scraper_service

    return build_scraper_service(context)


def _build_writer(context: ServiceContext) -> Service:
    from twitstack.writer.retry_hooks import writer_retry_hook
    from twitstack.writer.service import build_writer_service

    service = build_writer_service(context)
    # stamina is process-global: count the writer's retries in the writer's own registry.
    stamina.instrumentation.set_on_retry_hooks([writer_retry_hook(service.registry)])
    return service


def _build_moderation(context: ServiceContext) -> Service:
    from twitstack.moderation.service import build_moderation_service

    return build_moderation_service(context)


def _build_notifier(context: ServiceContext) -> Service:
    from twitstack.notifier.service import build_notifier_service

    return build_notifier_service(context)


def default_catalog() -> dict[str, ServiceBuilder]:
    """The real services; each is imported only when selected (`--only writer` skips twscrape)."""
    return {
        "scraper": _build_scraper,
        "writer": _build_writer,
        "moderation": _build_moderation,
        "notifier": _build_notifier,
    }


SERVICE_NAMES = tuple(default_catalog())  # what `--only` accepts


def prepare_data_dir(settings: Settings) -> None:
    """Create `data_dir` (0700: it holds sessions and tokens) if it does not exist."""
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.state_dir.stat().st_uid == os.getuid():
        settings.state_dir.chmod(0o700)


@dataclass
class _Supervised:
    """Bookkeeping for one service under supervision."""

    service: Service
    health: ServiceHealthMetrics
    backoff_s: float
    stopped: anyio.Event = field(default_factory=anyio.Event)
    crashes: deque[float] = field(default_factory=deque)
    parked: bool = False
    park_delay_s: float = 0.0


class Supervisor:
    """Runs services in one task group: restarts crashed ones, drains them on SIGTERM."""

    def __init__(
        self,
        services: Sequence[Service],
        settings: SupervisorSettings,
        *,
        metrics_host: str = "127.0.0.1",
        notifier: SystemdNotifier | None = None,
        crash_injector: CrashInjector | None = None,
    ) -> None:
        self._settings = settings
        self._metrics_host = metrics_host
        self._notifier = notifier if notifier is not None else SystemdNotifier()
        self._crash_injector = crash_injector
        self._units = [
            _Supervised(
                service,
                ServiceHealthMetrics(service.registry, service.name),
                backoff_s=settings.restart_backoff_initial_s,
            )
            for service in services
        ]
        self._stopping = anyio.Event()
        self.metrics_ports: dict[str, int] = {}

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start every service, report ready, and return after a clean shutdown."""
        started_at = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._handle_signals, tg.cancel_scope)
            for unit in self._units:
                if unit.service.metrics_port is not None:
                    self.metrics_ports[unit.service.name] = await tg.start(
                        self._serve_metrics, unit.service
                    )
                await tg.start(self._supervise, unit)
            tg.start_soon(self._notifier.run_watchdog)
            # Everything alive now (modules, settings, templates, pools) lives as long as the
            # process: frozen, it is no longer rescanned by full collections, whose pauses
            # hold the one event loop every service shares (40-76 ms measured under load).
            gc.freeze()
            self._notifier.ready()
            log.info(
                "supervisor.started",
                services=[unit.service.name for unit in self._units],
                metrics_ports=self.metrics_ports,
                startup_s=round(time.monotonic() - started_at, 3),
            )
            task_status.started()
            await self._stopping.wait()
            await self._drain()
            tg.cancel_scope.cancel()
        log.info("supervisor.stopped")

    def request_stop(self) -> None:
        """Begin a graceful shutdown, as SIGTERM does."""
        if not self._stopping.is_set():
            self._notifier.stopping()
            for unit in self._units:
                unit.service.request_stop()
            self._stopping.set()

    async def _drain(self) -> None:
        grace = self._settings.shutdown_grace_s
        with anyio.move_on_after(grace) as scope:
            for unit in self._units:
                await unit.stopped.wait()
        pending = [unit.service.name for unit in self._units if not unit.stopped.is_set()]
        if scope.cancelled_caught:
            log.warning("supervisor.grace_expired", grace_s=grace, cancelling=pending)

    async def _handle_signals(self, scope: anyio.CancelScope) -> None:
        # Signals can only be received in the main thread; tests driving the supervisor from
        # another thread call request_stop() instead.
        try:
            with anyio.open_signal_receiver(*HANDLED_SIGNALS) as signals:
                async for signum in signals:
                    if self._stopping.is_set():
                        log.warning("supervisor.forced_exit", signal=signal.Signals(signum).name)
                        scope.cancel()
                        return
                    log.info(
                        "supervisor.stopping",
                        signal=signal.Signals(signum).name,
                        grace_s=self._settings.shutdown_grace_s,
                    )
                    self.request_stop()
        except ValueError:
            return

    async def _serve_metrics(self, service: Service, *, task_status: TaskStatus[int]) -> None:
        assert service.metrics_port is not None
        await serve_metrics(
            service.registry,
            host=self._metrics_host,
            port=service.metrics_port,
            name=f"{service.name} metrics",
            task_status=task_status,
        )

    async def _supervise(self, unit: _Supervised, *, task_status: TaskStatus[None]) -> None:
        """Run one service; restart it with backoff after a crash, park or exit on a crash loop."""
        bind_service(unit.service.name)
        first = True
        try:
            while True:
                try:
                    async with anyio.create_task_group() as inner:
                        await inner.start(self._run_once, unit, inner.cancel_scope)
                        if self._stopping.is_set():
                            # The stop request came while this service was still starting.
                            unit.service.request_stop()
                        unit.health.set_up(True)
                        log.info(f"{unit.service.name}.started")
                        inner.start_soon(self._forgive, unit)
                        if self._crash_injector is not None:
                            inner.start_soon(self._crash_injector.watch, unit.service.name)
                        if first:
                            first = False
                            task_status.started()
                    if self._stopping.is_set():
                        return
                    log.error(f"{unit.service.name}.exited_unexpectedly")
                except Exception as exc:
                    if first:
                        raise  # a service that never started is a start-up failure
                    unit.health.set_up(False)
                    log.error(f"{unit.service.name}.crashed", exc_info=exc)
                    if self._stopping.is_set():
                        return
                unit.health.set_up(False)
                delay = self._next_delay(unit)
                unit.health.count_restart()
                log.info(f"{unit.service.name}.restarting", in_s=round(delay, 2))
                with anyio.move_on_after(delay):
                    await self._stopping.wait()
                if self._stopping.is_set():
                    return
        finally:
            unit.health.set_up(False)
            unit.stopped.set()
            log.info(f"{unit.service.name}.stopped")

    @staticmethod
    async def _run_once(
        unit: _Supervised, scope: anyio.CancelScope, *, task_status: TaskStatus[None]
    ) -> None:
        """One incarnation of the service; its end also ends the helpers running beside it."""
        await unit.service.run(task_status=task_status)
        scope.cancel()

    async def _forgive(self, unit: _Supervised) -> None:
        """A service up for the whole crash-loop window starts afresh: unparked, short backoff."""
        await anyio.sleep(self._settings.crash_loop_window_s)
        unit.crashes.clear()
        unit.backoff_s = self._settings.restart_backoff_initial_s
        if unit.parked:
            unit.parked = False
            unit.health.set_parked(False)
            log.info("supervisor.service_unparked", service=unit.service.name)

    def _next_delay(self, unit: _Supervised) -> float:
        """How long to wait before restarting `unit` after a crash; a crash loop parks or exits."""
        settings = self._settings
        now = time.monotonic()
        unit.crashes.append(now)
        window = settings.crash_loop_window_s
        while unit.crashes and unit.crashes[0] < now - window:
            unit.crashes.popleft()
        if len(unit.crashes) <= settings.crash_loop_max_crashes and not unit.parked:
            delay = unit.backoff_s
            unit.backoff_s = min(unit.backoff_s * 2, settings.restart_backoff_max_s)
            return delay
        if settings.crash_loop_action == "exit":
            raise CrashLoopError(
                f"{unit.service.name} crashed {len(unit.crashes)} times within {window:g} s; "
                "stopping the daemon"
            )
        if unit.parked:
            unit.park_delay_s = min(unit.park_delay_s * 2, settings.crash_loop_park_backoff_max_s)
        else:
            unit.parked = True
            unit.park_delay_s = settings.crash_loop_park_backoff_initial_s
            unit.health.set_parked(True)
            log.error(
                "supervisor.service_parked",
                service=unit.service.name,
                crashes=len(unit.crashes),
                window_s=window,
                retry_in_s=unit.park_delay_s,
            )
        return unit.park_delay_s


def trust_local_approver(settings: Settings, names: Sequence[str]) -> Settings:
    """Let a writer in this process accept the approvals of the moderation service beside it.

    With both services in one process and no writer keys configured, the writer trusts the
    moderation service's public key (created in data_dir on first use), so a single-host
    `twitstack run` works without copying keys around. Configured keys are never replaced.
    """
    if not {"writer", "moderation"} <= set(names) or settings.writer.approval_public_keys:
        return settings
    from twitstack.moderation.keyfiles import approval_private_key
    from twitstack.writes.signing import load_private_key, public_key_to_base64

    prepare_data_dir(settings)
    key_text, _ = approval_private_key(settings.moderation, settings.state_dir)
    public = public_key_to_base64(load_private_key(key_text).public_key())
    log.info("supervisor.local_approver_trusted", public_key=public)
    writer = settings.writer.model_copy(update={"approval_public_keys": (public,)})
    return settings.model_copy(update={"writer": writer})


def select_services(
    catalog: Mapping[str, ServiceBuilder],
    only: Sequence[str] | None,
    settings: Settings | None = None,
) -> list[str]:
    """The service names to run, in catalog order; `only` is validated by the CLI.

    Without `--only`, the notifier runs only when `[notifier]` configures a channel: an idle
    one would still hold a metrics port.
    """
    if only:
        return [name for name in catalog if name in only]
    idle = settings is not None and not settings.notifier.enabled
    return [name for name in catalog if not (name == "notifier" and idle)]


@asynccontextmanager
async def open_shared_resources(
    settings: Settings, *, redis: Redis | None = None
) -> AsyncIterator[ServiceContext]:
    """Everything services share: the data directory and the one Redis pool."""
    prepare_data_dir(settings)
    async with AsyncExitStack() as stack:
        if redis is None:
            redis = await stack.enter_async_context(
                open_redis(
                    settings.redis_url,
                    max_connections=settings.redis_max_connections,
                    startup_timeout_s=settings.supervisor.redis_startup_timeout_s,
                )
            )
        yield ServiceContext(settings=settings, redis=redis, data_dir=settings.state_dir)


def drain_grace_s(settings: Settings, names: Sequence[str]) -> float:
    """How long a SIGTERM lets the selected services drain: the longest grace among them.

    The supervisor's own grace is the floor; a service with a grace of its own (the writer's
    `[writer] shutdown_grace_s`, for requests in flight) gets that long too.
    """
    graces = [settings.supervisor.shutdown_grace_s]
    if "writer" in names:
        graces.append(settings.writer.shutdown_grace_s)
    return max(graces)


async def check_redis_access(redis: Redis, names: Sequence[str]) -> None:
    """Fail the start, one line per missing permission, if the Redis user lacks something the
    services need (an ACL file older than the release): retrying would never help."""
    from twitstack.core.redis_access import check_access
    from twitstack.ops.redis_acl import SERVICE_ROLES, service_access_needs

    known = [name for name in names if name in SERVICE_ROLES]
    if known:
        await check_access(redis, service_access_needs(known), who=",".join(known))


def load_before_loop(
    settings: Settings,
    *,
    only: Sequence[str] | None = None,
    catalog: Mapping[str, ServiceBuilder] | None = None,
) -> None:
    """Load, before the event loop starts, what the selected services load first at start.

    The writer's text rules (twitstack.writes.text: twitter_text's patterns, the emoji one
    built from its 90 kB source) are compiled with a transient peak of about as much memory as
    they keep (tracemalloc: 2.1 MiB peak, 1.0 MiB kept). Compiled at the writer's start, after
    the rest of the daemon's start-up, the freed part stayed resident in partly used heap pages
    that nothing refilled: an idle `run --only writer` held 2.0 MiB more VmRSS. Compiled here,
    the start-up that follows reuses it. It is the moment, not the thread: compiling in the
    event loop at the writer's start saved nothing, compiling when the writer is built 0.3 MiB.
    """
    names = select_services(default_catalog() if catalog is None else catalog, only, settings)
    if "writer" in names:
        load_text_rules()


async def run_daemon(
    settings: Settings,
    *,
    only: Sequence[str] | None = None,
    catalog: Mapping[str, ServiceBuilder] | None = None,
    redis: Redis | None = None,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Open shared resources, build the selected services and supervise them until stopped."""
    catalog = default_catalog() if catalog is None else catalog
    names = select_services(catalog, only, settings)
    # stamina's default hooks count into the global Prometheus registry and log the retried
    # call's arguments; services that want retry metrics install their own hook.
    stamina.instrumentation.set_on_retry_hooks([])
    settings = trust_local_approver(settings, names)
    async with open_shared_resources(settings, redis=redis) as context:
        await check_redis_access(context.redis, names)
        services = [catalog[name](context) for name in names]
        grace = {"shutdown_grace_s": drain_grace_s(settings, names)}
        injector = None
        if settings.supervisor.crash_injection:
            log.warning("supervisor.crash_injection_enabled", key_prefix=CRASH_KEY_PREFIX)
            injector = CrashInjector(context.redis)
        supervisor = Supervisor(
            services,
            settings.supervisor.model_copy(update=grace),
            metrics_host=settings.supervisor.metrics_host,
            crash_injector=injector,
        )
        await supervisor.run(task_status=task_status)


__all__ = [
    "SERVICE_NAMES",
    "Supervisor",
    "default_catalog",
    "load_before_loop",
    "open_shared_resources",
    "run_daemon",
    "select_services",
]
