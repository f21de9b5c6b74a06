"""CLI: `twitstack spend [--account A] [--month 2026-12]` and `twitstack spend cap ...`."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
import time
from typing import TYPE_CHECKING

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from twitstack.core.redis import open_redis, redact_url
from twitstack.writes import keys
from twitstack.writes.spend import (
    PERIODS,
    TOTAL,
    CapError,
    CapsInForce,
    Periods,
    caps_in_force,
    raise_cap,
    read_rollup,
    usd,
)

if TYPE_CHECKING:
    from twitstack.core.config import Settings

_STARTUP_TIMEOUT_S = 5.0
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twitstack spend ...` on the CLI parser."""
    spend = subparsers.add_parser("spend", help="X spend per account and action, and its caps")
    spend.add_argument("--account", help="one writer account (default: every account)")
    spend.add_argument("--month", help="YYYY-MM (default: this UTC month)")
    spend.set_defaults(handler=_report)
    actions = spend.add_subparsers(dest="spend_command", metavar="ACTION")
    cap = actions.add_parser(
        "cap", help="raise today's or this month's cap (audited; the next period: settings)"
    )
    cap.add_argument("period", choices=PERIODS)
    cap.add_argument("usd", type=float, help="the new cap in US dollars")
    scope = cap.add_mutually_exclusive_group(required=True)
    scope.add_argument("--for", dest="cap_account", metavar="ACCOUNT", help="one account's cap")
    scope.add_argument("--total", action="store_true", help="the cap over every account")
    cap.set_defaults(handler=_cap)


def _redis_down(command: str, settings: Settings, exc: Exception) -> int:
    where = redact_url(settings.redis_url)
    print(f"{command}: Redis at {where} is not answering: {exc}", file=sys.stderr)
    return 1


def _report(args: argparse.Namespace, settings: Settings) -> int:
    month = args.month or Periods.at(time.time()).month
    if not _MONTH.match(month):
        print(f"spend: --month must look like 2026-12, not {month!r}", file=sys.stderr)
        return 2
    try:
        lines = anyio.run(_report_lines, settings, month, args.account)
    except (RedisError, OSError) as exc:
        return _redis_down("spend", settings, exc)
    print("\n".join(lines))
    return 0


def _money(micros: int | None) -> str:
    return "no cap" if micros is None else f"${usd(micros):,.3f}"


def _spent(micros: int | None) -> str:
    # None: the ledger cannot read it (the writer holds its capped budgets), never $0.
    return "UNREADABLE" if micros is None else _money(micros)


async def _report_lines(settings: Settings, month: str, account: str | None) -> list[str]:
    now = Periods.at(time.time())
    async with open_redis(settings.redis_url, startup_timeout_s=_STARTUP_TIMEOUT_S) as redis:
        rollup = await read_rollup(redis, month)
        today = await read_rollup(redis, now.day)
        names = sorted(
            {a.name for a in settings.writer.accounts} | set(rollup.by_account)
            | set(settings.spend.accounts)
        )  # fmt: skip
        if account is not None:
            names = [account]
        lines = [
            f"X spend in {month} (UTC; prices as of {settings.spend.prices_as_of}): "
            f"total {_spent(rollup.spent(TOTAL))}"
        ]
        if month == now.month:
            total = await _caps_line(
                redis, settings, TOTAL, "all", today.spent(TOTAL), rollup.spent(TOTAL)
            )
            lines.append(total)
        for name in names:
            spent = rollup.spent(name)
            lines.append(f"account {name}: {_spent(spent)}")
            if month == now.month:
                spent_today = today.spent(name)
                lines.append(await _caps_line(redis, settings, name, name, spent_today, spent))
            for (who, action), micros in sorted(rollup.by_action.items()):
                if who == name:
                    lines.append(f"  {action}: {_money(micros)}")
        for period in (rollup, today) if month == now.month else (rollup,):
            if period.wrong_type:
                lines.append(
                    f"(the {period.period} ledger {keys.spend_rollup(period.period)} is not a "
                    "hash: its spend is unreadable and its capped budgets hold; see "
                    "docs/operations.md)"
                )
        if rollup.junk:
            lines.append(f"({rollup.junk} unreadable ledger fields skipped)")
        return lines


async def _caps_line(
    redis: Redis, settings: Settings, scope: str, label: str, day: int | None, month: int | None
) -> str:
    caps = await caps_in_force(redis, settings.spend, scope)
    parts = []
    for period, spent in (("day", day), ("month", month)):
        cap = caps[period]
        raised = " (raised)" if cap.raised else ""
        if cap.micros is None:
            parts.append(f"{period} {_spent(spent)}, no cap")
        elif spent is None:
            parts.append(f"{period} UNREADABLE of {_money(cap.micros)}{raised}, held")
        else:
            left = max(cap.micros - spent, 0)
            parts.append(
                f"{period} {_money(spent)} of {_money(cap.micros)}{raised}, {_money(left)} left"
            )
    return f"  budget {label}: " + "; ".join(parts)


def _cap(args: argparse.Namespace, settings: Settings) -> int:
    scope = TOTAL if args.total else args.cap_account
    if scope != TOTAL and settings.writer.account(scope) is None:
        print(f"spend cap: no account named {scope!r} is configured", file=sys.stderr)
        return 2
    actor = f"cli:{getpass.getuser()}"
    try:
        found = anyio.run(_raise, settings, scope, args.period, args.usd, actor)
    except CapError as exc:
        print(f"spend cap: {exc}", file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        return _redis_down("spend cap", settings, exc)
    label = "all accounts" if scope == TOTAL else scope
    print(f"{label}: {args.period} cap is now {_money(found.micros)} (audited as {actor})")
    return 0


async def _raise(
    settings: Settings, scope: str, period: str, value: float, actor: str
) -> CapsInForce:
    async with open_redis(settings.redis_url, startup_timeout_s=_STARTUP_TIMEOUT_S) as redis:
        return await raise_cap(
            redis, settings.spend, scope=scope, period=period, usd_cap=value, actor=actor,
            now=time.time(),
        )  # fmt: skip
