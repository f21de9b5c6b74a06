"""The notifier service: reads the ledger's events, checks what waits, delivers, retries.

It runs beside the writer but shares nothing with it but Redis: it reads the events stream
with its own cursor, never writes the ledger, and does its slow work (HTTP, SMTP in a
thread) off the writer's path, with a bounded number of deliveries in flight.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import anyio
import httpx
from anyio.abc import TaskStatus
from redis.exceptions import RedisError

from twitstack.core.errors import ConfigError
from twitstack.core.logging import get_logger
from twitstack.core.metrics import new_registry
from twitstack.core.secrets import aget_secret
from twitstack.core.sections.notifier import NotifierSettings
from twitstack.core.service import ServiceContext
from twitstack.notifier.channels import (
    Channel,
    DeliveryError,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
    url_problem,
)
from twitstack.notifier.checks import NotificationSources
from twitstack.notifier.metrics import NotifierMetrics
from twitstack.notifier.models import Delivery
from twitstack.notifier.outbox import Claimed, NotificationOutbox
from twitstack.writes.errors import UnreadableError
from twitstack.writes.quarantine import Quarantine

log = get_logger("twitstack.notifier")

_EVENTS_BLOCK_MS = 1000
_DELIVERY_POLL_S = 1.0
_REDIS_BACKOFF_MAX_S = 30.0
# Delivery ids are remembered this long, so a notification is not scheduled twice. (Requests
# reported as waiting are remembered while they are pending, however long that is.)
SCHEDULED_MEMORY_S = 30 * 86400


class NotifierService:
    """Tells people what needs them, over the channels configured in `[notifier]`."""

    name = "notifier"

    def __init__(self, context: ServiceContext) -> None:
        self._context = context
        self._settings: NotifierSettings = context.settings.notifier
        self.registry = new_registry()
        self.metrics_port = self._settings.metrics_port
        self.metrics = NotifierMetrics(self.registry)
        self._outbox = NotificationOutbox(context.redis)
        self._quarantine = Quarantine(context.redis, self.metrics.quarantined, service=self.name)
        self._stopping = anyio.Event()
        self._wake = anyio.Event()
        self._channels: dict[str, Channel] = {}
        self.metrics.zero(
            {name: [e.value for e in ch.events] for name, ch in self._settings.channels().items()}
        )

    def request_stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        if not self._settings.enabled:
            log.info("notifier.no_channels")
            task_status.started()
            await self._stopping.wait()
            return
        timeout = httpx.Timeout(self._settings.delivery_timeout_s)
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(
                httpx.AsyncClient(timeout=timeout, follow_redirects=False)
            )
            self._channels = await self._open_channels(http)
            sources = NotificationSources(
                self._context.redis, self._outbox, self._settings,
                self._context.settings.writer, self._quarantine,
            )  # fmt: skip
            cursor = await sources.start_cursor()
            log.info("notifier.ready", channels=sorted(self._channels), cursor=cursor)
            task_status.started()
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._loop, "events", lambda: self._read_events(sources))
                tg.start_soon(self._loop, "checks", lambda: self._check(sources))
                tg.start_soon(self._loop, "deliveries", self._deliver_due)

    async def _open_channels(self, http: httpx.AsyncClient) -> dict[str, Channel]:
        """Each configured channel with its secrets; every missing secret named at once."""
        settings = self._settings
        missing: list[str] = []

        async def secret(path: str, name: str) -> str:
            value = await aget_secret(name)
            if not value:
                missing.append(f"notifier.{path}: secret {name!r} is not set")
            return value or ""

        async def url_secret(path: str, name: str) -> str:
            value = await secret(path, name)
            problem = url_problem(value) if value else None
            if problem is not None:
                missing.append(f"notifier.{path}: secret {name!r} is unusable: {problem}")
            return value

        channels: dict[str, Channel] = {}
        configured = settings.channels()
        if "slack" in configured and settings.slack is not None:
            url = await url_secret("slack.webhook_url_secret", settings.slack.webhook_url_secret)
            channels["slack"] = SlackChannel(http, url)
        if "webhook" in configured and settings.webhook is not None:
            url = await url_secret("webhook.url_secret", settings.webhook.url_secret)
            key = await secret("webhook.signing_key_secret", settings.webhook.signing_key_secret)
            channels["webhook"] = WebhookChannel(http, url, key)
        if "email" in configured and settings.email is not None:
            password = None
            if settings.email.password_secret:
                password = await secret("email.password_secret", settings.email.password_secret)
            channels["email"] = EmailChannel(
                settings.email, password, timeout_s=settings.delivery_timeout_s
            )
        if missing:
            raise ConfigError(missing)
        return channels

    async def _loop(self, what: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` until stopped; a failure (a Redis outage, a bug) is logged and waited out."""
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                await step()
                backoff = 0.5
            except (RedisError, OSError) as exc:
                self.metrics.redis_errors.inc()
                log.warning("notifier.redis_error", loop=what, error=type(exc).__name__,
                            retry_in_s=backoff)  # fmt: skip
            except Exception as exc:
                # Whatever one record did, the loop goes on (after a pause, so a record that
                # fails every time cannot spin it); the traceback says what to fix.
                log.error("notifier.loop_failed", loop=what, exc_info=exc, retry_in_s=backoff)
            else:
                continue
            with anyio.move_on_after(backoff):
                await self._stopping.wait()
            backoff = min(backoff * 2, _REDIS_BACKOFF_MAX_S)

    async def _read_events(self, sources: NotificationSources) -> None:
        if await sources.read_events(block_ms=_EVENTS_BLOCK_MS):
            self._wake.set()

    async def _check(self, sources: NotificationSources) -> None:
        found = await sources.check_waiting()
        found += await sources.check_reconnect()
        found += await sources.check_dead_letters()
        await self._outbox.prune_scheduled(older_than_s=SCHEDULED_MEMORY_S)
        await sources.forget_waiting()
        await self._refresh_depths()
        self.metrics.last_check.set(time.time())
        if found:
            self._wake.set()
        with anyio.move_on_after(self._settings.check_interval_s):
            await self._stopping.wait()

    async def _refresh_depths(self) -> None:
        outbox, dead = await self._outbox.depth()
        self.metrics.outbox.set(outbox)
        self.metrics.dead_letters.set(dead)

    async def _deliver_due(self) -> None:
        settings = self._settings
        # A claim hides a delivery from other notifiers until the attempt surely ended.
        lease_s = settings.delivery_timeout_s * 3 + 5
        claimed = await self._outbox.claim(lease_s=lease_s, limit=settings.concurrency * 4)
        if not claimed:
            with anyio.move_on_after(_DELIVERY_POLL_S):
                await self._wake.wait()
            self._wake = anyio.Event()
            return
        limiter = anyio.CapacityLimiter(settings.concurrency)
        async with anyio.create_task_group() as tg:
            for item in claimed:
                tg.start_soon(self._deliver_one, limiter, item)
        await self._refresh_depths()

    async def _deliver_one(self, limiter: anyio.CapacityLimiter, item: Claimed) -> None:
        async with limiter:
            try:
                await self._attempt(item)
            except (RedisError, OSError) as exc:
                # The lease runs out and the delivery is tried again: nothing is lost.
                self.metrics.redis_errors.inc()
                log.warning("notifier.redis_error", loop="delivery", error=type(exc).__name__)
            except Exception as exc:
                # One delivery's bug must not cancel its siblings mid-send (they would be
                # sent again when their leases ran out); this one is retried after its lease.
                log.error("notifier.delivery_crashed", delivery=item.id, exc_info=exc)

    async def _attempt(self, item: Claimed) -> None:
        delivery_id, raw = item.id, item.raw
        try:
            delivery = Delivery.from_json(delivery_id, raw)
            if delivery.id != delivery_id:
                raise UnreadableError("notification", delivery_id, "malformed_notification",
                                      "stored under another delivery's id")  # fmt: skip
        except UnreadableError as exc:
            await self._quarantine.put_error(exc)
            await self._outbox.dead_letter(item.key, raw, channel="?", event="?", attempts=0,
                                           error=exc.reason)  # fmt: skip
            return
        event = delivery.notification.event.value
        channel = self._channels.get(delivery.channel)
        try:
            if channel is None:
                raise DeliveryError("channel_not_configured", retryable=False)
            with anyio.fail_after(self._settings.delivery_timeout_s * 2):
                await channel.send(delivery.notification, delivery_id)
        except DeliveryError as exc:
            await self._failed(delivery, exc.reason, retryable=exc.retryable)
        except TimeoutError:
            await self._failed(delivery, "timeout", retryable=True)
        except Exception as exc:  # a bug in one channel must not stop the others
            log.error("notifier.delivery_crashed", delivery=delivery_id, exc_info=exc)
            await self._failed(delivery, f"error ({type(exc).__name__})", retryable=True)
        else:
            await self._outbox.done(delivery_id)
            self.metrics.count(delivery.channel, event, "sent")
            log.info("notifier.sent", delivery=delivery_id, channel=delivery.channel,
                     attempts=delivery.attempts + 1)  # fmt: skip

    async def _failed(self, delivery: Delivery, reason: str, *, retryable: bool) -> None:
        failed = delivery.failed(reason)
        event = delivery.notification.event.value
        if not retryable or failed.attempts >= self._settings.max_attempts:
            await self._outbox.dead_letter(
                delivery.id, failed.to_json(), channel=delivery.channel, event=event,
                attempts=failed.attempts, error=reason,
            )  # fmt: skip
            self.metrics.count(delivery.channel, event, "dead_lettered")
            log.error("notifier.dead_lettered", delivery=delivery.id, channel=delivery.channel,
                      attempts=failed.attempts, reason=reason)  # fmt: skip
            return
        delay = self._backoff(failed.attempts)
        await self._outbox.retry_later(failed, due=time.time() + delay)
        self.metrics.count(delivery.channel, event, "retried")
        log.warning(
            "notifier.retrying",
            delivery=delivery.id,
            channel=delivery.channel,
            attempts=failed.attempts,
            reason=reason,
            retry_in_s=round(delay, 2),
        )

    def _backoff(self, attempts: int) -> float:
        settings = self._settings
        delay = min(settings.retry_initial_s * 2 ** (attempts - 1), settings.retry_max_s)
        return float(delay * random.uniform(0.9, 1.1))  # jitter, not security


def build_notifier_service(context: ServiceContext) -> NotifierService:
    return NotifierService(context)
