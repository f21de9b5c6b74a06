"""The queue page's spend header (month/day to date against the total caps, accounts held for
their budget), read from Redis at most once per `ttl_s` seconds however many moderators poll.

Every queue render used to read both rollups, both caps, a month of daily values (for a chart
the queue does not show) and one pause key per account: ~10 Redis round trips per page, which
tripled the page's latency under load. The header is informational; what the writer enforces is
read by the writer itself, so a figure up to `ttl_s` old (2 s by default) is acceptable here. The
cached value is keyed by the UTC day and month, so a period rollover is never served from the
previous period, and a cap raised from these pages drops it at once (`invalidate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from redis.asyncio import Redis

from twitstack.core.sections.spend import SpendSettings
from twitstack.moderation.spend_view import BudgetLine, budget_held_accounts, scope_spend_lines
from twitstack.writes.quarantine import Quarantine
from twitstack.writes.spend import TOTAL, Periods

DEFAULT_TTL_S = 2.0


@dataclass(frozen=True)
class QueueSpend:
    """Spend of all accounts today and this month, and the accounts held for their budget."""

    day: BudgetLine
    month: BudgetLine
    held: tuple[str, ...]


class SpendSummary:
    """One `QueueSpend` per (period, accounts), re-read when older than `ttl_s` seconds.

    Age is measured on a monotonic clock (a test's frozen wall clock must not make it
    permanent); one caller reads while concurrent callers wait for its result.
    """

    def __init__(
        self, *, ttl_s: float = DEFAULT_TTL_S, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._key: tuple[str, str, tuple[str, ...]] | None = None
        self._stored_at = 0.0
        self._value: QueueSpend | None = None
        self._lock = anyio.Lock()
        self.reads = 0

    def invalidate(self) -> None:
        """Forget the cached value (a cap was just changed from this service)."""
        self._value = None

    def _fresh(self, key: tuple[str, str, tuple[str, ...]]) -> QueueSpend | None:
        if self._value is None or self._key != key:
            return None
        if self._monotonic() - self._stored_at >= self._ttl_s:
            return None
        return self._value

    async def get(
        self,
        redis: Redis,
        settings: SpendSettings,
        accounts: tuple[str, ...],
        now: float,
        *,
        quarantine: Quarantine | None = None,
    ) -> QueueSpend:
        periods = Periods.at(now)
        key = (periods.day, periods.month, accounts)
        value = self._fresh(key)
        if value is not None:
            return value
        async with self._lock:
            value = self._fresh(key)
            if value is not None:
                return value
            day, month = await scope_spend_lines(redis, settings, TOTAL, now, quarantine=quarantine)
            held = tuple(await budget_held_accounts(redis, list(accounts)))
            value = QueueSpend(day=day, month=month, held=held)
            self.reads += 1
            self._key, self._stored_at, self._value = key, self._monotonic(), value
            return value
