"""Account health: watch every response, quarantine suspended/blocked accounts, probe, re-probe."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from pathlib import Path

from twitstack.core.logging import get_logger
from twitstack.scraper.metrics import ScraperMetrics
from twitstack.scraper.models import (
    DRIFT_SIGNALS,
    QUARANTINE_PREFIX,
    AccountInfo,
    AccountState,
    ResponseEvent,
    Signal,
)
from twitstack.scraper.proxies import ProxyPool
from twitstack.scraper.twscrape_adapter import TwscrapeAccounts

log = get_logger("twitstack.scraper.health")
_ERROR_SIGNALS = frozenset(
    {Signal.SUSPENDED, Signal.AUTH_FAILED, Signal.BLOCKED, Signal.API_ERROR, Signal.SERVER_ERROR,
     Signal.TRANSPORT}
)  # fmt: skip
_RECENT_PER_ACCOUNT = 50


class AccountHealth:
    """Turns twscrape's silent failures into account states.

    `observe` is called synchronously from inside twscrape (it must not await); the actions
    it decides (quarantine, proxy moves) are queued and applied by `apply_pending`.
    """

    def __init__(
        self,
        accounts: TwscrapeAccounts,
        metrics: ScraperMetrics,
        *,
        suspect_window_s: float,
        probe_screen_name: str,
        scratch_dir: Path,
        proxies: ProxyPool | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._accounts = accounts
        self._metrics = metrics
        self._window = suspect_window_s
        self._probe_name = probe_screen_name
        self._scratch = scratch_dir
        self._proxies = proxies or ProxyPool()
        self._clock = clock
        self._errors: defaultdict[str, deque[tuple[float, Signal]]] = defaultdict(
            lambda: deque(maxlen=_RECENT_PER_ACCOUNT)
        )
        self._quarantine: dict[str, str] = {}
        self._proxy_moves: set[str] = set()
        self._queues: set[str] = set()  # queues whose next-unlock gauge exists
        self.drift_seen = False

    # observation (sync, from inside twscrape) -------------------------------------------------

    def observe(self, event: ResponseEvent) -> None:
        self._metrics.responses.labels(signal=event.signal.value).inc()
        if event.signal in DRIFT_SIGNALS:
            # X changed, not the account: never makes an account suspect.
            self._metrics.graphql_drift.labels(kind=event.signal.value).inc()
        if event.signal in _ERROR_SIGNALS and event.username:
            self._errors[event.username].append((event.at or self._clock(), event.signal))
        if event.signal is Signal.SUSPENDED:
            self._quarantine[event.username] = "suspended (64)"
        elif event.signal is Signal.BLOCKED:
            log.warning("scraper.account_blocked", account=event.username, status=event.status)
        elif event.signal is Signal.FEATURES_OUTDATED:
            self.drift_seen = True
        elif event.signal is Signal.TRANSPORT and event.proxy:
            self._proxy_moves.add(event.username)

    def recent_errors(self, username: str) -> list[Signal]:
        cutoff = self._clock() - self._window
        return [signal for at, signal in self._errors.get(username, ()) if at >= cutoff]

    def is_suspect(self, username: str) -> bool:
        """An account with errors inside the window: its empty results cannot be trusted."""
        return bool(self.recent_errors(username))

    # actions ----------------------------------------------------------------------------------

    async def apply_pending(self) -> None:
        """Quarantine accounts seen suspended and move accounts off failing proxies."""
        quarantine, self._quarantine = self._quarantine, {}
        for username, reason in quarantine.items():
            await self.quarantine(username, reason)
        moves, self._proxy_moves = self._proxy_moves, set()
        for username in moves:
            info = await self._accounts.get(username)
            new_proxy = self._proxies.next_after(info.proxy if info else None)
            if info is not None and new_proxy and new_proxy != info.proxy:
                await self._accounts.set_proxy(username, new_proxy)
                log.info("scraper.account_proxy_rotated", account=username)

    async def quarantine(self, username: str, reason: str) -> None:
        await self._accounts.deactivate(username, f"{QUARANTINE_PREFIX} {reason}")
        log.warning("scraper.account_quarantined", account=username, reason=reason)

    async def probe(self, username: str) -> AccountState:
        """Probe one account and act on the answer; returns its state afterwards."""
        events = await self._accounts.probe(username, self._probe_name, scratch_dir=self._scratch)
        for event in events:
            self.observe(event)
        self._quarantine.pop(username, None)  # decided below, from the probe as a whole
        signals = {e.signal for e in events}
        if Signal.OK in signals:
            info = await self._accounts.get(username)
            if info is not None and not info.active:
                await self._accounts.reactivate(username)
                log.info("scraper.account_reinstated", account=username)
            self._errors.pop(username, None)
            return AccountState.ACTIVE
        if Signal.SUSPENDED in signals:
            await self.quarantine(username, "suspended (64)")
            return AccountState.QUARANTINED
        if Signal.BLOCKED in signals:
            await self.quarantine(username, "blocked (HTML error page)")
            return AccountState.QUARANTINED
        if Signal.AUTH_FAILED in signals:
            codes = sorted({c for e in events for c in e.error_codes})
            await self._accounts.deactivate(username, f"auth failed {codes}: re-import cookies")
            return AccountState.INACTIVE
        # Rate-limited, server errors or nothing at all: inconclusive, keep what we had.
        return AccountState.SUSPECT

    async def probe_due(self, *, include_quarantined: bool, include_active: bool) -> None:
        """One sweep: suspect accounts always, active ones and/or quarantined ones on request."""
        for info in await self._accounts.list_accounts():
            state = self.state_of(info)
            due = (
                state is AccountState.SUSPECT
                or (include_active and state in (AccountState.ACTIVE, AccountState.LOCKED))
                or (include_quarantined and state is AccountState.QUARANTINED)
            )
            if due:
                result = await self.probe(info.username)
                log.info("scraper.account_probed", account=info.username, state=result.value)

    # reporting --------------------------------------------------------------------------------

    def state_of(self, info: AccountInfo) -> AccountState:
        if not info.active:
            return AccountState.QUARANTINED if info.quarantined else AccountState.INACTIVE
        if self.is_suspect(info.username):
            return AccountState.SUSPECT
        now = self._clock()
        if info.locks and all(lock.timestamp() > now for lock in info.locks.values()):
            return AccountState.LOCKED
        return AccountState.ACTIVE

    async def refresh_metrics(self) -> dict[AccountState, int]:
        accounts = await self._accounts.list_accounts()
        counts = dict.fromkeys(AccountState, 0)
        next_unlock: dict[str, float] = {}
        now = self._clock()
        for info in accounts:
            counts[self.state_of(info)] += 1
            for queue, until in info.locks.items():
                ts = until.timestamp()
                if ts > now and info.active:
                    next_unlock[queue] = min(ts, next_unlock.get(queue, ts))
        for state, n in counts.items():
            self._metrics.accounts.labels(state=state.value).set(n)
        # 0 for a queue nothing is locked on (at start, and once its last lock has passed).
        self._queues |= next_unlock.keys()
        for queue in self._queues:
            self._metrics.next_unlock.labels(queue=queue).set(next_unlock.get(queue, 0))
        return counts

    def watch_queues(self, queues: Iterable[str]) -> None:
        """Queues the configured jobs use: their next-unlock gauge exists (at 0) from start."""
        self._queues.update(queues)
