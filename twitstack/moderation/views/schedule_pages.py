"""What goes out when: the Scheduled list, its week calendar, and cancel / reschedule.

Both actions use the ledger's own transitions. Cancelling rejects the approved request (the
schedule's promotion only ever pushes requests that are still approved). Rescheduling moves an
approved request's due time in the schedule (approved -> approved, like a writer's retry); the
approval signs the request's `not_before`, so a request can be moved later than that time while
keeping its approval, never earlier (that needs a new request and a new approval).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from twitstack.moderation.access import client_ip, deps_of, principal_of
from twitstack.moderation.decisions import DecisionError
from twitstack.moderation.flash import flash_redirect
from twitstack.moderation.queries import RequestRow
from twitstack.moderation.roles import Role
from twitstack.moderation.views.bulk_pages import label_of
from twitstack.moderation.views.render import render
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus as S

_LIMIT = 500


@dataclass(frozen=True)
class Slot:
    """A request on the schedule: when it is due and whether it is approved yet."""

    row: RequestRow
    due: float
    approved: bool


async def _slots(request: Request, account: str | None) -> list[Slot]:
    """Approved requests by their due time in the schedule, and timed requests awaiting review."""
    deps = deps_of(request)
    where = "state IN ('approved', 'pending') AND not_before IS NOT NULL"
    params: list[Any] = []
    if account:
        where += " AND account = ?"
        params.append(account)
    rows = [
        RequestRow.from_row(r)
        for r in await deps.db.fetchall(
            f"SELECT * FROM requests WHERE {where} ORDER BY not_before LIMIT {_LIMIT}", params
        )
    ]
    async with deps.redis.pipeline(transaction=False) as pipe:
        for row in rows:
            pipe.zscore(keys.SCHEDULE, row.id)
        scores = await pipe.execute()
    slots = []
    for row, score in zip(rows, scores, strict=True):
        # The schedule knows a rescheduled time; the signed not_before is the earliest one.
        due = float(score) / 1000 if score is not None else float(row.not_before or 0)
        slots.append(Slot(row, due, row.state == "approved"))
    return sorted(slots, key=lambda s: (s.due, s.row.id))


def _week_start(value: str | None, now: float) -> datetime:
    try:
        day = datetime.strptime(value or "", "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        day = datetime.fromtimestamp(now, UTC)
    day = day.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


async def scheduled_page(request: Request) -> Response:
    """The list of scheduled requests with cancel/reschedule, and a week calendar per account."""
    deps = deps_of(request)
    account = (request.query_params.get("account") or "").strip()[:64] or None
    slots = await _slots(request, account)
    start = _week_start(request.query_params.get("week"), deps.clock())
    days = []
    for offset in range(7):
        day = start + timedelta(days=offset)
        lo, hi = day.timestamp(), (day + timedelta(days=1)).timestamp()
        days.append((day, [s for s in slots if lo <= s.due < hi]))

    def week_url(delta: int) -> str:
        query = {"week": (start + timedelta(days=7 * delta)).strftime("%Y-%m-%d")}
        if account:
            query["account"] = account
        return "/scheduled?" + urlencode(query)

    accounts = sorted({*deps.known_accounts, *(s.row.account for s in slots)})
    context = {
        "slots": [s for s in slots if s.approved],
        "days": days,
        "week_start": start,
        "week_url": week_url,
        "account": account,
        "accounts": accounts,
        "can_moderate": principal_of(request).user.role >= Role.MODERATOR,
        "nav": "scheduled",
    }
    return render(request, "scheduled.html", context)


async def cancel_submit(request: Request) -> Response:
    """Take an approved request off the schedule: it is rejected, with the reason given."""
    deps = deps_of(request)
    request_id = str(request.path_params["request_id"])
    form = await request.form()
    reason = str(form.get("reason", "")).strip() or "cancelled from the schedule"
    record = await deps.decisions.get(request_id)
    if record is None or record.state is not S.APPROVED:
        return flash_redirect(
            "/scheduled", error="Only an approved, scheduled request can be cancelled."
        )
    label = await label_of(request, request_id)
    try:
        await deps.decisions.reject(
            request_id, reason=reason, user=principal_of(request).user, ip=client_ip(request)
        )
    except DecisionError as exc:
        return flash_redirect("/scheduled", error=exc.message)
    return flash_redirect("/scheduled", notice=f"Cancelled {label}; it will not be sent.")


def _parse_when(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


async def reschedule_submit(request: Request) -> Response:
    """Move an approved request's due time (never before the time its approval signed)."""
    deps = deps_of(request)
    request_id = str(request.path_params["request_id"])
    form = await request.form()
    when = _parse_when(str(form.get("when", "")))
    if when is None:
        return flash_redirect("/scheduled", error="Reschedule: expected a date and time (UTC).")
    record = await deps.decisions.get(request_id)
    if record is None or record.state is not S.APPROVED:
        return flash_redirect("/scheduled", error="Only an approved request can be rescheduled.")
    signed = record.request.not_before
    if signed is not None and when < signed:
        return flash_redirect(
            f"/requests/{quote(request_id)}",
            error=f"Its approval says not before {signed:%Y-%m-%d %H:%M} UTC; moving it earlier "
            "needs a new approval (copy it into a new request).",
        )
    if when <= datetime.fromtimestamp(deps.clock(), UTC):
        return flash_redirect("/scheduled", error="Reschedule: choose a time in the future.")
    user = principal_of(request).user
    stamp = when.strftime("%Y-%m-%d %H:%M UTC")
    result = await deps.decisions.ledger.retry_later(
        request_id,
        not_before=when,
        actor=user.username,
        reason=f"rescheduled to {stamp}",
        from_states=(S.APPROVED,),
    )
    if not result.ok:
        return flash_redirect("/scheduled", error="It changed meanwhile; reload and try again.")
    await deps.audit.record(
        user.username, "request.reschedule", request_id, {"due": stamp}, ip=client_ip(request)
    )
    await deps.history.catch_up()
    label = await label_of(request, request_id)
    return flash_redirect("/scheduled", notice=f"Rescheduled {label} to {stamp}.")
