"""The writer's side of the spend ledger: charge arguments for sends, charges for other calls.

A send is checked and charged inside the Lua call that reserves its rate-limit room and
commits `sending` (no extra round trip); calls no budget check precedes (inline retries, the
call after a token refresh, read-backs) are charged right after X answered them, one Lua
call each, since X bills a request whether or not it succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from twitstack.core.logging import get_logger
from twitstack.core.sections.spend import SpendSettings
from twitstack.core.sections.writer import WriterSettings
from twitstack.writer.metrics import WriterMetrics
from twitstack.writes import keys, scripts
from twitstack.writes.ledger_types import as_text
from twitstack.writes.quarantine import Quarantine, is_wrong_type
from twitstack.writes.spend import (
    BUDGET_PAUSE,
    HELD_SUFFIX,
    TOTAL,
    BudgetView,
    CapsInForce,
    Periods,
    caps_in_force,
    read_rollup,
    spend_args,
    spend_keys,
    usd,
)

_log = get_logger("twitstack.writer.spend")


def writer_accounts(config: WriterSettings) -> list[str]:
    """The names of the accounts the writer acts for now: TOML, then connected."""
    return [a.name for a in (*config.accounts, *config.connected_accounts())]


@dataclass(frozen=True, slots=True)
class Charge:
    """What one send will be charged, and the period keys it goes to (for a refund)."""

    account: str
    action: str
    micros: int
    periods: Periods


class SpendLedger:
    """Budget arguments for the reservation scripts, and the metrics of what they answer."""

    def __init__(
        self,
        redis: Redis,
        settings: SpendSettings,
        metrics: WriterMetrics,
        *,
        clock: Callable[[], float],
        quarantine: Quarantine | None = None,
    ) -> None:
        self.settings = settings
        self._quarantine = quarantine
        self._metrics = metrics
        self._clock = clock
        self._redis = redis
        self._record = scripts.register(redis, "spend_record")
        # Bumped by every script reply: a refresh that read Redis before a newer reply must
        # not overwrite the gauges that reply set.
        self._generation = 0
        # Rollups of another type this process has reported (until seen fixed).
        self._unreadable: set[str] = set()

    def charge(self, account: str, action: str, units: int = 1) -> Charge:
        """The charge of `units` of `action` for `account` now."""
        micros = self.settings.prices.micros(action) * units
        return Charge(account, action, micros, Periods.at(self._clock()))

    def keys_and_args(self, charge: Charge) -> tuple[list[str], list[str | int]]:
        """spend_core's S and P for `charge`."""
        args = spend_args(self.settings, charge.account, charge.action, charge.micros,
                          charge.periods)  # fmt: skip
        return spend_keys(charge.account, charge.periods), args

    def refund_keys_and_args(self, charge: Charge) -> tuple[list[str], list[str | int]]:
        """budget_release's spend keys and arguments: the charge's own periods."""
        s, _ = self.keys_and_args(charge)
        return s[:2], [
            charge.account, charge.action, charge.micros,
            self.settings.day_retention_s, self.settings.month_retention_s,
        ]  # fmt: skip

    async def answered(self, charge: Charge, reply: Sequence[Any], *, charged: bool) -> BudgetView:
        """Update the metrics from a script's spend reply; `charged` when it charged."""
        view = BudgetView.parse(reply)
        self._generation += 1
        if charged:
            self.counted(charge)
        if view.junk:
            await self._junk(charge, view.junk)
        # "Reached" means the next request like this one would wait: the same answer
        # whichever order concurrent workers read their replies in.
        scopes = (charge.account, charge.account, "total", "total")
        periods = ("day", "month", "day", "month")
        for scope, period, spent, cap, label in zip(
            scopes, periods, view.spent, view.caps, BudgetView.SCOPES, strict=True
        ):
            if cap < 0:
                continue
            used = spent / cap if cap else float(spent > 0)
            reached = view.blocked == label or spent + charge.micros > cap
            self._metrics.budget_used.labels(scope=scope, period=period).set(used)
            self._metrics.budget_reached.labels(scope=scope, period=period).set(int(reached))
        if view.blocked:
            _log.warning("writer.spend_budget_reached", account=charge.account,
                         budget=view.blocked, cost_usd=usd(charge.micros))  # fmt: skip
        return view

    async def _junk(self, charge: Charge, count: int) -> None:
        """Report hostile values the script set aside (lua/spend_core.lua), once per account
        and day across replicas: quarantined, counted and logged."""
        detail = (
            f"{count} value(s) in the spend ledger or raised caps were not counts: a total read "
            "as a number rounded up, a total or a whole rollup that cannot be read left in place "
            "(it holds its capped budgets until the true total is written or the period ends), "
            "a cap ignored"
        )
        await self._wrong_type_rollups(charge)
        ref = f"{charge.account}:{charge.periods.day}"
        if self._quarantine is not None:
            await self._quarantine.put("spend_budget", ref, "junk_value", detail)
        else:
            self._metrics.quarantined.labels(source="spend_budget", reason="junk_value").inc()
        _log.warning("writer.spend_junk", account=charge.account, count=count,
                     period=charge.periods.day)  # fmt: skip

    def counted(self, charge: Charge) -> None:
        """Add a charge the ledger holds to `twitstack_x_spend_usd_total`."""
        self._metrics.x_spend.labels(account=charge.account, action=charge.action).inc(
            usd(charge.micros)
        )

    def warn_unknown(self, accounts: Sequence[str]) -> None:
        """Log caps configured under names no account has: a typo would leave one uncapped."""
        unknown = sorted(set(self.settings.accounts) - set(accounts))
        if unknown:
            _log.warning("writer.spend_caps_for_unknown_accounts", accounts=unknown)

    async def _wrong_type_rollups(self, charge: Charge) -> None:
        """Name a day or month rollup of another type: the spend script cannot read it, so it
        holds every capped budget it counts in until an operator puts the true figures back
        (docs/operations.md); logged and quarantined once per key."""
        for period in (charge.periods.day, charge.periods.month):
            key = keys.spend_rollup(period)
            kind = as_text(await self._redis.type(key))
            if kind in ("hash", "none"):
                self._unreadable.discard(key)
                continue
            if key in self._unreadable:
                continue  # logged already: every held send meets it again
            self._unreadable.add(key)
            _log.error("writer.spend_rollup_unreadable", key=key, type=kind,
                       account=charge.account, fix="docs/operations.md, spend ledger")  # fmt: skip
            detail = (
                f"{key} is a {kind}, not a hash: its spend cannot be read, so every capped "
                "budget it counts in holds until its true figures are written back as a hash"
            )
            if self._quarantine is not None:
                await self._quarantine.put("spend_rollup", key, "wrong_type", detail)
            else:
                self._metrics.quarantined.labels(source="spend_rollup", reason="wrong_type").inc()

    async def refresh(self, accounts: Sequence[str]) -> None:
        """Recompute the budget gauges from Redis: a new day or month, a raised cap or another
        replica's spending shows even when this replica sends nothing."""
        generation = self._generation
        periods = Periods.at(self._clock())
        day = await read_rollup(self._redis, periods.day, quarantine=self._quarantine)
        month = await read_rollup(self._redis, periods.month, quarantine=self._quarantine)
        cheapest = min(self.settings.prices.micros(a) for a in ("post", "dm", "delete"))
        held: set[str] = set()
        for account in accounts:
            pause = await self._pause_budget(account)
            if pause:
                scope, _, period = pause.partition("|")
                held.add(f"{account if scope == 'account' else 'total'}|{period}")
                await self._note_hold(account, period, periods)
        caps_of: dict[str, dict[str, CapsInForce]] = {}
        for scope in [*accounts, "total"]:
            name = TOTAL if scope == "total" else scope
            caps_of[scope] = await caps_in_force(self._redis, self.settings, name, self._clock())
        if generation != self._generation:
            return  # a script answered meanwhile: its figures are newer than these
        for scope, caps in caps_of.items():
            for period, rollup in (("day", day), ("month", month)):
                cap = caps[period].micros
                if cap is None:
                    continue
                found = rollup.spent(TOTAL if scope == "total" else scope)
                # Unreadable: the spend script holds the budget as if spent up to its cap.
                spent = cap if found is None else found
                used = spent / cap if cap else float(spent > 0)
                reached = found is None or f"{scope}|{period}" in held or spent + cheapest > cap
                self._metrics.budget_used.labels(scope=scope, period=period).set(used)
                self._metrics.budget_reached.labels(scope=scope, period=period).set(int(reached))

    async def _note_hold(self, account: str, period: str, periods: Periods) -> None:
        """Note a budget pause in its period's rollup, where the writer's charge looks for it
        (lua/spend_core.lua reads the pause only when noted). The script notes the pauses it
        sets; this covers one set otherwise, e.g. by a release before the note existed."""
        day = period == "day"
        rollup = keys.spend_rollup(periods.day if day else periods.month)
        ttl = self.settings.day_retention_s if day else self.settings.month_retention_s
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(rollup, account + HELD_SUFFIX, "1")
                pipe.expire(rollup, ttl, nx=True)
                await pipe.execute()
        except ResponseError as exc:
            # A rollup of another type: the next charge meets it. Any other refusal (NOPERM)
            # is raised: the gauges loop counts and logs it (writer_redis_permission_errors).
            if not is_wrong_type(exc):
                raise

    async def _pause_budget(self, account: str) -> str:
        """The budget named by `account`'s budget pause ('' when it has none)."""
        try:
            reason, budget = await self._redis.hmget(
                keys.account_paused(account), ["reason", "budget"]
            )
        except ResponseError as exc:
            if not is_wrong_type(exc):
                raise  # NOPERM is no "no pause": the gauges loop counts and logs it
            return ""  # a pause key of another type is no budget pause
        if reason is None or as_text(reason) != BUDGET_PAUSE or budget is None:
            return ""
        return as_text(budget)

    async def record(self, account: str, action: str, units: int = 1) -> None:
        """Charge a call X already answered (or failed on): no cap can undo it."""
        charge = self.charge(account, action, units)
        if charge.micros <= 0:
            return  # a free action (or no units) changes nothing: no round trip
        s, p = self.keys_and_args(charge)
        reply = await self._record(keys=s, args=p)
        await self.answered(charge, reply, charged=True)


__all__ = ["TOTAL", "Charge", "SpendLedger"]
