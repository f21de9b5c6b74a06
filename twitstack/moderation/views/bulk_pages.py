"""Working through the queue: approve or reject many requests at once, or one from the list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from twitstack.moderation.access import client_ip, deps_of, principal_of
from twitstack.moderation.decisions import DecisionError
from twitstack.moderation.dm_privacy import dm_text_visible
from twitstack.moderation.flash import flash_redirect
from twitstack.moderation.queries import get_request_row
from twitstack.moderation.views.render import render
from twitstack.writes.models import ID_PATTERN

# One bulk submission decides at most this many requests (a page is at most 500 rows).
MAX_BULK = 500
_HASH_CHARS = frozenset("0123456789abcdef")


def snippet(text: str, limit: int = 60) -> str:
    """The start of a request's text for a notice ("Approved «Hello wor…»"), one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


async def label_of(request: Request, request_id: str) -> str:
    """How a notice names a request: «its text», or its id when it has no text."""
    row = await get_request_row(deps_of(request).db, request_id)
    if row is not None and row.action == "dm" and not dm_text_visible(principal_of(request)):
        return f"DM {request_id}"
    text = snippet(row.text) if row is not None and row.text else ""
    return f"«{text}»" if text else request_id


def reason_from_form(form: FormData, presets: tuple[str, ...]) -> str:
    """The moderator's own words if given, else the preset they picked (only a listed one)."""
    own = str(form.get("reason", "")).strip()
    if own:
        return own
    preset = str(form.get("preset", "")).strip()
    return preset if preset in presets else ""


@dataclass(frozen=True)
class Pick:
    """One ticked row: the request and exactly the revision and content it showed."""

    request_id: str
    revision: int
    content_hash: str


def parse_pick(value: str) -> Pick | None:
    """ "<id> <revision> <sha256 hex>" as the row rendered it; None for anything else."""
    parts = value.split(" ")
    if len(parts) != 3 or not ID_PATTERN.fullmatch(parts[0]) or not parts[1].isdigit():
        return None
    if len(parts[2]) != 64 or not set(parts[2]) <= _HASH_CHARS:
        return None
    return Pick(parts[0], int(parts[1]), parts[2])


@dataclass(frozen=True)
class BulkResult:
    """What happened to one request of a bulk decision."""

    request_id: str
    label: str
    ok: bool
    message: str


async def _approve(request: Request, pick: Pick) -> BulkResult:
    deps = deps_of(request)
    label = await label_of(request, pick.request_id)
    try:
        outcome = await deps.decisions.approve(
            pick.request_id,
            expected_revision=pick.revision,
            expected_content_hash=pick.content_hash,
            user=principal_of(request).user,
            ip=client_ip(request),
        )
    except DecisionError as exc:
        return BulkResult(pick.request_id, label, False, exc.message)
    if not outcome.approved:
        message = f"approval recorded ({len(outcome.approvers)} of {outcome.needed})"
        return BulkResult(pick.request_id, label, True, message)
    return BulkResult(pick.request_id, label, True, "approved; sent to the writer")


async def _reject(request: Request, request_id: str, reason: str) -> BulkResult:
    deps = deps_of(request)
    label = await label_of(request, request_id)
    try:
        await deps.decisions.reject(
            request_id, reason=reason, user=principal_of(request).user, ip=client_ip(request)
        )
    except DecisionError as exc:
        return BulkResult(request_id, label, False, exc.message)
    return BulkResult(request_id, label, True, "rejected")


async def bulk_submit(request: Request) -> Response:
    """Approve or reject the ticked rows (or approve one row's button); report each one."""
    deps = deps_of(request)
    form = await request.form()
    one = str(form.get("approve_one", ""))
    if one:
        pick = parse_pick(one)
        if pick is None:
            return flash_redirect("/queue", error="That row could not be read; reload the queue.")
        result = await _approve(request, pick)
        if result.ok:
            return flash_redirect("/queue", notice=f"{result.label}: {result.message}.")
        return flash_redirect("/queue", error=f"{result.label}: {result.message}")
    raw = [str(v) for v in form.getlist("pick")]
    if not raw:
        return flash_redirect("/queue", error="Select at least one request first.")
    if len(raw) > MAX_BULK:
        return flash_redirect("/queue", error=f"At most {MAX_BULK} requests at once.")
    picks = [parse_pick(v) for v in raw]
    action = str(form.get("do", ""))
    results: list[BulkResult] = []
    if action == "approve":
        for pick in picks:
            if pick is None:
                results.append(BulkResult("?", "?", False, "unreadable selection; reload"))
            else:
                results.append(await _approve(request, pick))
    elif action == "reject":
        reason = reason_from_form(form, deps.settings.rejection_reasons)
        if not reason:
            return flash_redirect("/queue", error="Choose a reason or type one to reject.")
        for pick in picks:
            if pick is None:
                results.append(BulkResult("?", "?", False, "unreadable selection; reload"))
            else:
                results.append(await _reject(request, pick.request_id, reason))
    else:
        return flash_redirect("/queue", error="Choose Approve selected or Reject selected.")
    done = sum(r.ok for r in results)
    context: dict[str, Any] = {
        "results": results,
        "verb": "Approved" if action == "approve" else "Rejected",
        "done": done,
        "refused": len(results) - done,
        "nav": "queue",
    }
    return render(request, "bulk_result.html", context)
