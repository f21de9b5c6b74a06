"""What moderators see of X spend: per-account budgets and a month chart (Accounts page), a
request's price and its account's remaining budget (approval card), month-to-date (queue).

Reads the writer's ledger (`twitstack.writes.spend`); the chart is inline SVG, no script.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from twitstack.core.sections.spend import SpendSettings
from twitstack.writes import keys
from twitstack.writes.ledger_types import as_text
from twitstack.writes.quarantine import Quarantine, is_wrong_type
from twitstack.writes.spend import (
    BUDGET_PAUSE,
    TOTAL,
    CapsInForce,
    Cost,
    Periods,
    caps_in_force,
    cost_of,
    daily_series,
    read_rollup,
    usd,
)

_CHART_W, _CHART_H, _CHART_PAD = 310, 64, 2


@dataclass(frozen=True)
class BudgetLine:
    """One period's spend against its cap (micro-USD; cap None = no cap; spent None = the
    ledger cannot read it, shown "unreadable": the writer holds a capped budget then)."""

    period: str
    spent: int | None
    cap: CapsInForce

    @property
    def left(self) -> int | None:
        if self.cap.micros is None or self.spent is None:
            return None
        return max(self.cap.micros - self.spent, 0)

    @property
    def ratio(self) -> float | None:
        if self.cap.micros is None:
            return None
        if self.spent is None:
            return 1.0  # held like a reached cap
        return 1.0 if self.cap.micros == 0 else self.spent / self.cap.micros


@dataclass(frozen=True)
class ScopeSpend:
    """The spend of one account (or of everything, scope TOTAL) this month."""

    scope: str
    day: BudgetLine
    month: BudgetLine
    by_action: dict[str, int]
    chart: Markup


def money(micros: int | None) -> str:
    """Dollars as shown on pages: three decimals (X's prices are tenths of a cent)."""
    return "no cap" if micros is None else f"${usd(micros):,.3f}"


def spent_money(micros: int | None) -> str:
    """Spend as shown on pages: "unreadable" when the ledger cannot read it (never $0)."""
    return UNREADABLE if micros is None else money(micros)


UNREADABLE = "unreadable"


def bar_chart(series: list[tuple[str, int | None]], label: str) -> Markup:
    """A small bar chart of daily spend as inline SVG (no script; every text escaped). A day
    the ledger cannot read (None) is a full-height hatched bar titled "unreadable", never 0."""
    top = max((v for _, v in series if v is not None), default=0)
    width = (_CHART_W - _CHART_PAD) / max(len(series), 1)
    bars = []
    for i, (day, value) in enumerate(series):
        if value is None:
            height, shown, kind = float(_CHART_H - _CHART_PAD), UNREADABLE, ' class="unreadable"'
        else:
            height = 0.0 if top == 0 else (_CHART_H - _CHART_PAD) * value / top
            shown, kind = money(value), ""
        x = _CHART_PAD + i * width
        y = _CHART_H - height
        bars.append(
            f'<rect{kind} x="{x:.1f}" y="{y:.1f}" width="{max(width - 1, 1):.1f}" '
            f'height="{height:.1f}"><title>{escape(day)}: {escape(shown)}</title></rect>'
        )
    unreadable = sum(1 for _, v in series if v is None)
    lost = f", {unreadable} day{'s' if unreadable > 1 else ''} unreadable" if unreadable else ""
    title = escape(f"{label}: daily X spend, peak {money(top)}{lost}")
    return Markup(
        f'<svg class="spend-chart" role="img" aria-label="{title}" width="{_CHART_W}" '
        f'height="{_CHART_H}" viewBox="0 0 {_CHART_W} {_CHART_H}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{title}</title>{"".join(bars)}</svg>'
    )


async def scope_spend(
    redis: Redis,
    settings: SpendSettings,
    scopes: list[str],
    now: float,
    *,
    quarantine: Quarantine | None = None,
) -> list[ScopeSpend]:
    """This month's spend of TOTAL and each account in `scopes`, with caps and a chart each
    (an unreadable rollup or total reported through `quarantine`)."""
    periods = Periods.at(now)
    day = await read_rollup(redis, periods.day, quarantine=quarantine)
    month = await read_rollup(redis, periods.month, quarantine=quarantine)
    found = []
    for scope in [TOTAL, *scopes]:
        caps = await caps_in_force(redis, settings, scope, now)
        spent_day, spent_month = day.spent(scope), month.spent(scope)
        actions: dict[str, int] = {}
        for (who, action), micros in month.by_action.items():
            if scope in (TOTAL, who):
                actions[action] = actions.get(action, 0) + micros
        series = await daily_series(
            redis, periods.month, None if scope == TOTAL else scope, quarantine=quarantine
        )
        label = "all accounts" if scope == TOTAL else scope
        found.append(
            ScopeSpend(
                scope=scope,
                day=BudgetLine("day", spent_day, caps["day"]),
                month=BudgetLine("month", spent_month, caps["month"]),
                by_action=dict(sorted(actions.items())),
                chart=bar_chart(series, label),
            )
        )
    return found


@dataclass(frozen=True)
class CardCost:
    """The approval card's price line and what the account's budgets would have left."""

    cost: Cost
    lines: list[tuple[str, BudgetLine]]  # (scope label, line) for the account and the total
    held: bool  # the account is paused for its budget right now

    def after(self, line: BudgetLine) -> int | None:
        """What `line` would have left once this request is sent (None: no cap, or its
        spend unreadable)."""
        return None if line.left is None else line.left - self.cost.micros


async def card_cost(
    redis: Redis,
    settings: SpendSettings,
    action: str,
    payload: Mapping[str, Any],
    account: str,
    now: float,
    *,
    quarantine: Quarantine | None = None,
) -> CardCost:
    cost = cost_of(settings.prices, action, payload)
    lines: list[tuple[str, BudgetLine]] = []
    for scope in (account, TOTAL):
        spent = await scope_spend_lines(redis, settings, scope, now, quarantine=quarantine)
        label = "all accounts" if scope == TOTAL else account
        lines.extend((label, line) for line in spent)
    try:
        reason = await redis.hget(keys.account_paused(account), "reason")
    except ResponseError as exc:
        if not is_wrong_type(exc):
            raise  # NOPERM is no "not held"
        reason = None
    held = reason is not None and as_text(reason) == BUDGET_PAUSE
    return CardCost(cost, lines, held)


async def scope_spend_lines(
    redis: Redis,
    settings: SpendSettings,
    scope: str,
    now: float,
    *,
    quarantine: Quarantine | None = None,
) -> list[BudgetLine]:
    periods = Periods.at(now)
    caps = await caps_in_force(redis, settings, scope, now)
    lines = []
    for period, key in (("day", periods.day), ("month", periods.month)):
        rollup = await read_rollup(redis, key, quarantine=quarantine)
        lines.append(BudgetLine(period, rollup.spent(scope), caps[period]))
    return lines


async def budget_held_accounts(redis: Redis, names: list[str]) -> list[str]:
    """The accounts among `names` the writer holds for their budget now."""
    held = []
    for name in names:
        try:
            reason = await redis.hget(keys.account_paused(name), "reason")
        except ResponseError as exc:
            if not is_wrong_type(exc):
                raise  # NOPERM is no "not held"
            continue
        if reason is not None and as_text(reason) == BUDGET_PAUSE:
            held.append(name)
    return held
