"""CLI: `writer status` (queue, ledger, accounts, budgets) and `writer resume ACCOUNT`.

Both know the accounts of the TOML (`[[writer.accounts]]`) and those connected through the UI
or `twitstack x-accounts connect` (stored in Redis), as the writer acts for both.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from twitstack.core.redis import open_redis, redact_url
from twitstack.core.redis_access import ACL_RECIPE, RedisPermissionError, is_permission_error
from twitstack.writer.ratelimit import AccountPauses, RateLimitBudgets
from twitstack.writes import keys, ledger_index
from twitstack.writes.ledger_types import as_text
from twitstack.writes.queue import ReliableQueue
from twitstack.writes.spend import (
    BUDGET_PAUSE,
    TOTAL,
    CapsInForce,
    Periods,
    caps_in_force,
    read_rollup,
    usd,
)
from twitstack.writes.x_accounts import ConnectedAccount

if TYPE_CHECKING:
    from twitstack.core.config import Settings

_ENDPOINTS = ("tweets.create", "tweets.delete", "dm.create")
_CLI_STARTUP_TIMEOUT_S = 5.0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `twitstack writer ...` on the CLI parser."""
    writer = subparsers.add_parser("writer", help="inspect and operate the writer")
    actions = writer.add_subparsers(dest="writer_command", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="queue depths, requests by state, accounts")
    status.set_defaults(handler=_status)
    resume = actions.add_parser("resume", help="put a paused X account back in service")
    resume.add_argument("account")
    resume.set_defaults(handler=_resume)


def _status(args: argparse.Namespace, settings: Settings) -> int:
    try:
        lines = anyio.run(_status_lines, settings)
    except RedisPermissionError as exc:
        print(f"writer status: {exc}", file=sys.stderr)
        return 1
    except (RedisError, OSError) as exc:
        if is_permission_error(exc):
            # Answering, but refusing this user a key or command (an outdated ACL file).
            where = redact_url(settings.redis_url)
            print(f"writer status: Redis at {where} refused: {exc}; {ACL_RECIPE}", file=sys.stderr)
            return 1
        print(
            f"writer status: Redis at {redact_url(settings.redis_url)} is not answering: {exc}",
            file=sys.stderr,
        )
        return 1
    print("\n".join(lines))
    return 0


@dataclass(frozen=True)
class _Listed:
    """One account as status lists it: from the TOML (configured) or Redis (connected)."""

    name: str
    auth: str
    user_id: str
    kind: str


async def _accounts(redis: Redis, settings: Settings) -> list[_Listed]:
    """The TOML's accounts, then the connected ones the writer also acts for (a connected
    account named like a configured one is not used: the configured one wins)."""
    listed = [_Listed(a.name, a.auth, a.user_id, "configured") for a in settings.writer.accounts]
    configured = {a.name for a in listed}
    connected = ConnectedAccount.read_all(await redis.hgetall(keys.X_ACCOUNTS))
    for account in sorted(connected, key=lambda a: a.name):
        if account.name in configured:
            listed.append(_Listed(account.name, account.auth_kind, account.user_id,
                                  f"connected @{account.username}, UNUSED: a configured "
                                  "account has this name"))  # fmt: skip
        else:
            kind = f"connected @{account.username}"
            listed.append(_Listed(account.name, account.auth_kind, account.user_id, kind))
    return listed


async def _reconnect_needed(redis: Redis, account: str) -> str | None:
    """The reason the writer marked `account` as needing a new sign-in, if it did."""
    needed, reason = await redis.hmget(
        keys.oauth2_tokens(account), ["reconnect_needed", "reconnect_reason"]
    )
    if needed is None or as_text(needed) != "1":
        return None
    return as_text(reason) if reason else "no reason recorded"


async def _status_lines(settings: Settings) -> list[str]:
    async with open_redis(settings.redis_url, startup_timeout_s=_CLI_STARTUP_TIMEOUT_S) as redis:
        depths = await ReliableQueue(redis, "cli-status").depths()
        counts = await ledger_index.counts(redis)
        pauses = AccountPauses(redis, clock=time.time)
        budgets = RateLimitBudgets(redis, clock=time.time)
        lines = [
            f"queue {depths.queued}   processing {depths.processing}   "
            f"scheduled {depths.scheduled}   dead letters {depths.dead}",
            "requests: " + "   ".join(f"{state.value} {n}" for state, n in counts.items()),
        ]
        now = Periods.at(time.time())
        day, month = await read_rollup(redis, now.day), await read_rollup(redis, now.month)
        total_caps = await caps_in_force(redis, settings.spend, TOTAL)
        lines.append(_spend_line("all accounts", day.spent(TOTAL), month.spent(TOTAL), total_caps))
        for account in await _accounts(redis, settings):
            pause = await pauses.paused(account.name)
            state = "active" if pause is None else f"PAUSED ({pause.reason})"
            if pause is not None and pause.reason == BUDGET_PAUSE and pause.until is not None:
                state += f" until {datetime.fromtimestamp(pause.until, UTC):%Y-%m-%d %H:%M} UTC"
            reconnect = await _reconnect_needed(redis, account.name)
            if reconnect is not None:
                state += f", RECONNECT NEEDED ({reconnect})"
            lines.append(
                f"account {account.name} ({account.kind}, {account.auth}, "
                f"user {account.user_id}): {state}"
            )
            caps = await caps_in_force(redis, settings.spend, account.name)
            spent_day, spent_month = day.spent(account.name), month.spent(account.name)
            lines.append("  " + _spend_line("", spent_day, spent_month, caps))
            for endpoint in _ENDPOINTS:
                budget = await budgets.budget(account.name, endpoint)
                if budget is not None:
                    left = max(budget.reset - time.time(), 0)
                    lines.append(
                        f"  {endpoint}: {budget.remaining}/{budget.limit} left, "
                        f"resets in {left:.0f} s"
                    )
        return lines


def _spend_line(
    label: str, day: int | None, month: int | None, caps: dict[str, CapsInForce]
) -> str:
    parts = []
    for period, spent in (("today", day), ("this month", month)):
        cap = caps["day" if period == "today" else "month"].micros
        limit = "no cap" if cap is None else f"cap ${usd(cap):,.2f}"
        # None: the ledger cannot read it (its capped budgets hold), never shown as $0.
        shown = "UNREADABLE" if spent is None else f"${usd(spent):,.3f}"
        parts.append(f"{period} {shown} ({limit})")
    return ("spend " + (f"{label}: " if label else "") + ", ".join(parts)).strip()


def _resume(args: argparse.Namespace, settings: Settings) -> int:
    try:
        resumed = anyio.run(_resume_account, settings, args.account)
    except _UnknownAccountError:
        print(
            f"writer resume: no account named {args.account!r} is configured or connected",
            file=sys.stderr,
        )
        return 2
    except RedisPermissionError as exc:
        print(f"writer resume: {exc}", file=sys.stderr)
        return 1
    except (RedisError, OSError) as exc:
        print(
            f"writer resume: Redis at {redact_url(settings.redis_url)} is not answering: {exc}",
            file=sys.stderr,
        )
        return 1
    print(f"account {args.account}: " + ("resumed" if resumed else "was not paused"))
    return 0


class _UnknownAccountError(Exception):
    """`writer resume` named an account neither the TOML nor Redis knows."""


async def _resume_account(settings: Settings, account: str) -> bool:
    async with open_redis(settings.redis_url, startup_timeout_s=_CLI_STARTUP_TIMEOUT_S) as redis:
        if account not in {a.name for a in await _accounts(redis, settings)}:
            raise _UnknownAccountError(account)
        return await AccountPauses(redis, clock=time.time).resume(account)
