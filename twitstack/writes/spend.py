"""The X spend ledger and budget caps in Redis, shared by the writer, moderation and the CLI.

Every billable call is charged in micro-USD to per-day and per-month hashes
(`keys.spend_rollup`); a send is checked against four caps (the account's day and month,
everything's day and month) and charged in the same Lua call that reserves its rate-limit
room and commits `sending` (lua/spend_core.lua). Caps come from settings; an admin can raise
one for the current day or month at runtime (fields of that period's rollup, "<scope>|*|cap";
the old layout's `keys.spend_caps` hash is still read until the rollup folds it in), audited
in `keys.SPEND_CAPS_AUDIT`.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from twitstack.core.logging import get_logger
from twitstack.core.redis_access import ACL_RECIPE, is_permission_error, redis_user
from twitstack.core.sections.spend import ACTIONS, PriceTable, SpendSettings
from twitstack.writes import keys
from twitstack.writes.ledger_types import as_text
from twitstack.writes.quarantine import Quarantine, is_wrong_type
from twitstack.writes.thread import thread_parts

_log = get_logger("twitstack.writes.spend")
MICROS = 1_000_000
TOTAL = "*"  # the scope of everything together in rollups and caps
# Rollup fields that are not spend (see `keys.spend_rollup`): "<scope>|*|cap", "<account>|*|held"
# and "layout".
CAP_SUFFIX = "|*|cap"
HELD_SUFFIX = "|*|held"
LAYOUT_FIELD = "layout"
PERIODS = ("day", "month")
AUDIT_MAXLEN = 10_000
BUDGET_PAUSE = "budget"  # the account pause reason while a cap holds its requests


def usd(micros: int) -> float:
    return micros / MICROS


@dataclass(frozen=True, slots=True)
class Periods:
    """The UTC day and month an instant falls in, and when each ends (epoch s)."""

    day: str
    month: str
    day_end: float
    month_end: float

    @classmethod
    def at(cls, epoch_s: float) -> Periods:
        now = datetime.fromtimestamp(epoch_s, UTC)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        first = day.replace(day=1)
        next_month = (first + timedelta(days=32)).replace(day=1)
        return cls(
            day=day.strftime("%Y-%m-%d"),
            month=day.strftime("%Y-%m"),
            day_end=(day + timedelta(days=1)).timestamp(),
            month_end=next_month.timestamp(),
        )


def spend_keys(account: str, periods: Periods) -> list[str]:
    """spend_core's S: day and month rollups, the old layout's day and month raised caps (read
    only until each rollup folds them in), the pause hash."""
    return [
        keys.spend_rollup(periods.day),
        keys.spend_rollup(periods.month),
        keys.spend_caps(periods.day),
        keys.spend_caps(periods.month),
        keys.account_paused(account),
    ]


def _cap_arg(usd_cap: float | None) -> str:
    return "" if usd_cap is None else str(round(usd_cap * MICROS))


def spend_args(
    settings: SpendSettings, account: str, action: str, micros: int, periods: Periods
) -> list[str | int]:
    """spend_core's P for charging `micros` of `action` to `account`."""
    mine = settings.caps_for(account)
    return [
        account, action, micros,
        _cap_arg(mine.daily_usd), _cap_arg(mine.monthly_usd),
        _cap_arg(settings.total.daily_usd), _cap_arg(settings.total.monthly_usd),
        settings.day_retention_s, settings.month_retention_s,
        repr(periods.day_end), repr(periods.month_end),
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class BudgetView:
    """spend_core's reply: what the four budgets of one account stood at."""

    blocked: str  # '' or "account|day", "total|month", ...
    junk: int  # hostile values the script ignored or set aside
    spent: tuple[int, int, int, int]  # account day, account month, total day, total month
    caps: tuple[int, int, int, int]  # the same order; -1 = no cap

    SCOPES = ("account|day", "account|month", "total|day", "total|month")

    @classmethod
    def parse(cls, reply: Sequence[Any]) -> BudgetView:
        numbers = [int(as_text(v)) for v in reply[2:10]]
        spent = (numbers[0], numbers[1], numbers[2], numbers[3])
        caps = (numbers[4], numbers[5], numbers[6], numbers[7])
        return cls(as_text(reply[0]), int(as_text(reply[1])), spent, caps)


# --- what a request costs -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cost:
    """The price of one request: the billed action and its surcharges, in micro-USD."""

    action: str  # the ledger action charged when it is sent
    micros: int  # what the writer charges for the send itself
    media_micros: int  # its files' uploads (charged per upload by the media step, not here)
    parts: int = 1  # posts it makes (a thread: one per part, each charged as it is sent)

    @property
    def total_micros(self) -> int:
        return self.micros + self.media_micros


# Every URL twitter-text extracts has a dot followed by letters (a domain's TLD): text without
# one skips the extraction (~90 µs per send on a loaded host), which would find nothing.
_MAYBE_URL = re.compile(r"\.[^\W\d_]{2,}")


def has_url(text: str) -> bool:
    """Whether X prices a post with this text as one with a URL (twitter-text's extraction)."""
    if _MAYBE_URL.search(text) is None:
        return False
    from twitter_text import extract_urls  # ~16 MiB: the writer preloads it at start

    return bool(extract_urls(text))


def action_for(action: str, payload: Mapping[str, Any]) -> str:
    """The billed action of a write request (`ACTIONS`)."""
    if action == "dm":
        return "dm"
    if action == "delete":
        return "delete"
    text = payload.get("text")
    return "post_with_url" if isinstance(text, str) and has_url(text) else "post"


def cost_of(prices: PriceTable, action: str, payload: Mapping[str, Any]) -> Cost:
    if action == "thread":
        # Every part is a post X bills on its own (with its own URL price and media).
        parts = [p for p in thread_parts(payload) if isinstance(p, Mapping)]
        costs = [cost_of(prices, "tweet", part) for part in parts]
        return Cost(
            "post", sum(c.micros for c in costs), sum(c.media_micros for c in costs), len(costs)
        )
    billed = action_for(action, payload)
    # Files to upload (attachments) or uploaded already (media ids): each was one upload.
    media = payload.get("media")
    count = 0
    for field in ("attachments", "media_ids"):
        listed = media.get(field) if isinstance(media, Mapping) else None
        count += len(listed) if isinstance(listed, list) else 0
    return Cost(billed, prices.micros(billed), count * prices.micros("media_upload"))


# --- reading the ledger -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rollup:
    """One period's spend: micro-USD per (account, action), per account, and in total.

    A total the ledger cannot read (the writer holds its capped budgets for it: see
    lua/spend_core.lua) is never shown as $0: `spent` answers None for it. `unreadable` names
    such scopes (an account, or TOTAL); `wrong_type`: the whole rollup is of another type.
    """

    period: str
    by_action: dict[tuple[str, str], int]
    by_account: dict[str, int]
    total: int
    junk: int  # fields that were not counts (skipped)
    unreadable: frozenset[str] = frozenset()
    wrong_type: bool = False

    def spent(self, scope: str) -> int | None:
        """The spend of `scope` (an account or TOTAL) in this period; None if unreadable."""
        if self.wrong_type or scope in self.unreadable:
            return None
        return self.total if scope == TOTAL else self.by_account.get(scope, 0)

    @property
    def readable(self) -> bool:
        return not self.wrong_type and not self.unreadable


def spend_amount(value: str) -> int | None:
    """A total as the writer's script reads it (lua/spend_core.lua spend_amount): a count, or
    a finite number >= 0 rounded up; None when it cannot be read (text, < 0, NaN, inf)."""
    if value.isdigit() and len(value) <= 15:
        return int(value)
    if not value or any(c not in "0123456789 \t.eE+-" for c in value):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return math.ceil(number)


def parse_rollup(period: str, raw: Mapping[Any, Any]) -> Rollup:
    by_action: dict[tuple[str, str], int] = {}
    by_account: dict[str, int] = {}
    unreadable: set[str] = set()
    total = junk = 0
    for k, v in raw.items():
        field, value = _text(k), _text(v)
        if field == LAYOUT_FIELD or field.endswith((CAP_SUFFIX, HELD_SUFFIX)):
            continue  # not spend: raised caps and the hold note (`raised_caps` reads caps)
        account, sep, action = field.rpartition("|")
        if sep and action == TOTAL and not (value.isdigit() and len(value) <= 15):
            # A total: read as the writer's script reads it, or unreadable (never $0).
            junk += 1
            found = spend_amount(value)
            if found is None:
                unreadable.add(account)
                continue
            value = str(found)
        if not sep or not value.isdigit() or len(value) > 15:
            junk += 1
            continue
        amount = int(value)
        if account == TOTAL and action == TOTAL:
            total = amount
        elif action == TOTAL:
            by_account[account] = amount
        else:
            by_action[(account, action)] = amount
    return Rollup(period, by_action, by_account, total, junk, frozenset(unreadable))


async def read_rollup(redis: Redis, period: str, *, quarantine: Quarantine | None = None) -> Rollup:
    """The spend of one day or month, for display. A key of the wrong type, or a total that
    cannot be read, is `unreadable` (shown so, never as $0): reported through `quarantine`
    (once across replicas: counted and logged), else logged once per process."""
    key = keys.spend_rollup(period)
    try:
        raw = await redis.hgetall(key)
    except ResponseError as exc:
        if not is_wrong_type(exc):
            raise
        rollup = Rollup(period, {}, {}, 0, 1, wrong_type=True)
    else:
        rollup = parse_rollup(period, raw)
    if not rollup.readable:
        await _report_unreadable(key, rollup, quarantine)
    return rollup


_reported: set[str] = set()  # unreadable rollups this process logged (without a quarantine)


async def _report_unreadable(key: str, rollup: Rollup, quarantine: Quarantine | None) -> None:
    reason = "wrong_type" if rollup.wrong_type else "unreadable_total"
    what = "is not a hash" if rollup.wrong_type else "has totals that are not numbers"
    scopes = ", ".join(sorted("all" if s == TOTAL else s for s in rollup.unreadable))
    detail = f"{key} {what}{f' ({scopes})' if scopes else ''}: shown as unreadable"
    if quarantine is not None:
        await quarantine.put("spend_rollup", key, reason, detail)
    elif f"{key}:{reason}" not in _reported:
        _reported.add(f"{key}:{reason}")
        _log.warning("spend.rollup_unreadable", key=key, reason=reason, detail=detail)


def days_of_month(month: str) -> list[str]:
    first = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=UTC)
    days = []
    day = first
    while day.strftime("%Y-%m") == month:
        days.append(day.strftime("%Y-%m-%d"))
        day += timedelta(days=1)
    return days


async def daily_series(
    redis: Redis, month: str, account: str | None, *, quarantine: Quarantine | None = None
) -> list[tuple[str, int | None]]:
    """(day, micro-USD) for every day of `month`: one account's, or everything's.

    A day whose total cannot be read (its rollup of another type, a total that is no number)
    is None, shown as unreadable and never as $0, and reported as `read_rollup` reports it. A
    refusal (NOPERM: the user may not read the rollups) is logged with the key it was reading
    and raised, as is an outage: no day is drawn as 0 for a read that never happened.
    """
    days = days_of_month(month)
    field = f"{account or TOTAL}|{TOTAL}"
    async with redis.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hget(keys.spend_rollup(day), field)
        replies = await pipe.execute(raise_on_error=False)
    series: list[tuple[str, int | None]] = []
    for day, value in zip(days, replies, strict=True):
        amount: int | None
        if isinstance(value, BaseException):
            if not is_wrong_type(value):
                if is_permission_error(value):
                    _log.error(
                        "spend.read_refused", key=keys.spend_rollup(day), field=field,
                        user=redis_user(redis), error=str(value)[:300], fix=ACL_RECIPE,
                    )  # fmt: skip
                raise value
            amount = None
        elif value is None:
            amount = 0  # nothing spent that day
        else:
            amount = spend_amount(_text(value))
        if amount is None:
            await read_rollup(redis, day, quarantine=quarantine)  # reports what it cannot read
        series.append((day, amount))
    return series


def _text(value: object) -> str:
    # A reply as text; bytes that are not UTF-8 (junk written by hand) come out as junk text
    # (read as unreadable by the caller), never as an exception that fails the page.
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


# --- caps ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CapsInForce:
    """The cap of one scope and period (micro-USD, None = none) and where it comes from."""

    scope: str  # an account name or TOTAL
    period: str  # "day" or "month"
    micros: int | None
    raised: bool  # True when an admin's value in Redis overrides the settings


async def caps_in_force(
    redis: Redis, settings: SpendSettings, scope: str, now: float | None = None
) -> dict[str, CapsInForce]:
    """The day and month caps of `scope` (an account name or TOTAL) now: the configured one,
    or the one an admin raised for this day or month when it is higher."""
    periods = Periods.at(time.time() if now is None else now)
    configured = settings.total if scope == TOTAL else settings.caps_for(scope)
    found = {}
    for period, name in (("day", periods.day), ("month", periods.month)):
        raised = await raised_cap(redis, name, scope)
        base = configured.daily_usd if period == "day" else configured.monthly_usd
        micros = None if base is None else round(base * MICROS)
        if raised is not None and (micros is None or raised > micros):
            found[period] = CapsInForce(scope, period, raised, True)
        else:
            found[period] = CapsInForce(scope, period, micros, False)
    return found


def _count(value: object) -> int | None:
    text = as_text(value) if isinstance(value, bytes | str) else ""
    return int(text) if text.isdigit() and len(text) <= 15 else None


async def raised_cap(redis: Redis, period: str, scope: str) -> int | None:
    """The cap raised for `scope` (an account or TOTAL) in one day or month, if any: the
    rollup's field, or the old layout's caps hash while the rollup has not folded it in (caps
    only ever go up: the higher of the two). Junk and keys of another type read as none."""
    found: list[int] = []
    # Only a key of another type reads as none: a refusal for the ACL (NOPERM) is raised.
    try:
        value, layout = await redis.hmget(
            keys.spend_rollup(period), [scope + CAP_SUFFIX, LAYOUT_FIELD]
        )
    except ResponseError as exc:
        if not is_wrong_type(exc):
            raise
        value, layout = None, None
    if (n := _count(value)) is not None:
        found.append(n)
    if layout is None:
        try:
            old = await redis.hget(keys.spend_caps(period), scope)
        except ResponseError as exc:
            if not is_wrong_type(exc):
                raise
            old = None
        if (n := _count(old)) is not None:
            found.append(n)
    return max(found) if found else None


class CapError(ValueError):
    """A cap change that is refused (bad value, or lowering through `raise_cap`)."""


async def raise_cap(
    redis: Redis,
    settings: SpendSettings,
    *,
    scope: str,
    period: str,
    usd_cap: float,
    actor: str,
    now: float,
) -> CapsInForce:
    """Raise the cap of `scope` (account or TOTAL) for the current day or month, audited;
    never lowers it. The next period is capped by the settings again.

    Lowering and lasting changes stay settings changes (reviewed, restarted); raising for now
    is what an admin needs at runtime to let held requests go.
    """
    if period not in PERIODS:
        raise CapError(f"period must be day or month, not {period!r}")
    if not math.isfinite(usd_cap) or usd_cap < 0 or usd_cap > 1_000_000:
        raise CapError("cap must be a number of dollars between 0 and 1000000")
    current = (await caps_in_force(redis, settings, scope, now))[period]
    periods = Periods.at(now)
    name = periods.day if period == "day" else periods.month
    ttl = settings.day_retention_s if period == "day" else settings.month_retention_s
    micros = round(usd_cap * MICROS)
    if current.micros is None:
        raise CapError(f"{scope} has no {period} cap to raise")
    if micros < current.micros:
        raise CapError(
            f"${usd_cap:.2f} is below the cap in force (${usd(current.micros):.2f}): "
            "lower caps in the settings"
        )
    entry = json.dumps(
        {"at": now, "actor": actor, "scope": scope, "period": name,
         "from_micros": current.micros, "to_micros": micros},
        sort_keys=True,
    )  # fmt: skip
    # Into the period's rollup, read by the writer's check anyway; its lifetime is started here
    # when no charge has started it yet (NX: a charge's lifetime is kept).
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.spend_rollup(name), scope + CAP_SUFFIX, str(micros))
        pipe.expire(keys.spend_rollup(name), ttl, nx=True)
        pipe.xadd(keys.SPEND_CAPS_AUDIT, {"entry": entry}, maxlen=AUDIT_MAXLEN, approximate=True)
        await pipe.execute()
    return CapsInForce(scope, period, micros, True)


async def cap_audit(redis: Redis, count: int = 20) -> list[dict[str, Any]]:
    """The newest cap changes, newest first (entries that are not JSON objects skipped)."""
    try:
        rows = await redis.xrevrange(keys.SPEND_CAPS_AUDIT, count=count) or []
    except ResponseError as exc:
        if not is_wrong_type(exc):
            raise
        return []
    entries = []
    for _, fields in rows:
        raw = {as_text(k): as_text(v) for k, v in (fields or {}).items()}.get("entry", "")
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


__all__ = ["ACTIONS", "BudgetView", "Cost", "Periods", "Rollup"]
