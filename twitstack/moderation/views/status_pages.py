"""Read-mostly pages: scheduled requests, history, X accounts, and the dead-letter list."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from twitstack.moderation.access import client_ip, deps_of, principal_of
from twitstack.moderation.accounts import account_statuses
from twitstack.moderation.pagination import PageParams, paginate
from twitstack.moderation.queries import RequestFilter, RequestQueryset, RequestRow
from twitstack.moderation.views.render import render

HISTORY_TABS: dict[str, tuple[str, ...]] = {
    "all": ("executed", "failed", "needs_review", "rejected", "expired", "unknown", "sending"),
    "executed": ("executed",),
    "failed": ("failed",),
    "needs_review": ("needs_review", "unknown"),
    "rejected": ("rejected",),
    "expired": ("expired",),
}
# What a human should check before deciding a needs_review request, by the ledger's reason.
REVIEW_HINTS = (
    "Look on X whether the post or DM exists (the writer could not tell after an ambiguous "
    "attempt). If it does, nothing more is needed; if not, edit and approve again."
)


def tweet_url(result: dict[str, Any] | None) -> str | None:
    """A link to the post X created, when the writer recorded its id."""
    if not result:
        return None
    tweet_id = result.get("tweet_id") or result.get("id") or result.get("x_object_id")
    if isinstance(tweet_id, str) and tweet_id.isdigit():
        return f"https://x.com/i/web/status/{tweet_id}"
    return None


async def scheduled_page(request: Request) -> Response:
    """Approved requests waiting for their time (earliest first)."""
    deps = deps_of(request)
    rows = await deps.db.fetchall(
        "SELECT * FROM requests WHERE state = 'approved' AND not_before IS NOT NULL"
        " ORDER BY not_before LIMIT 500"
    )
    items = [RequestRow.from_row(r) for r in rows]
    return render(request, "scheduled.html", {"items": items, "nav": "scheduled"})


async def history_page(request: Request) -> Response:
    """Finished and stuck requests, most recently changed first, by tab."""
    deps = deps_of(request)
    tab = request.query_params.get("tab", "all")
    if tab not in HISTORY_TABS:
        tab = "all"
    flt = RequestFilter.from_query(
        request.query_params, states=HISTORY_TABS[tab], order_by="updated_at"
    )
    params = PageParams.from_query(request.query_params, default_size=deps.settings.page_size)
    page = await paginate(RequestQueryset(deps.db, flt, now=deps.clock()), params)
    return render(
        request,
        "history.html",
        {
            "page": page,
            "tab": tab,
            "tabs": list(HISTORY_TABS),
            "filter": flt,
            "tweet_url": tweet_url,
            "review_hint": REVIEW_HINTS,
            "nav": "history",
            "tab_url": lambda name: "/history?" + urlencode({"tab": name}),
        },
    )


async def accounts_page(request: Request) -> Response:
    """Rate-limit budgets, pauses and token expiry per X account, as the writer reports them."""
    deps = deps_of(request)
    statuses = await account_statuses(deps.redis, list(deps.known_accounts))
    return render(request, "accounts.html", {"accounts": statuses, "nav": "accounts"})


async def dead_letters_page(request: Request) -> Response:
    """Messages the writer could not take, with why."""
    deps = deps_of(request)
    entries = await deps.dead_letters.list()
    return render(
        request,
        "dead_letters.html",
        {"entries": entries, "total": await deps.dead_letters.count(), "nav": "dead"},
    )


async def _dead_letter_action(request: Request, action: str) -> Response:
    deps = deps_of(request)
    entry_id = str(request.path_params["entry_id"])
    entry = await deps.dead_letters.find(entry_id)
    if entry is None:
        return RedirectResponse("/dead-letters?error=Entry+already+handled.", status_code=303)
    if action == "retry":
        done = await deps.dead_letters.retry(entry)
        notice = "Message put back on the queue." if done else "Could not retry this entry."
    else:
        done = await deps.dead_letters.discard(entry)
        notice = "Entry discarded." if done else "Entry already handled."
    if done:
        await deps.audit.record(
            principal_of(request).user.username,
            f"dead_letter.{action}",
            entry_id,
            {"reason": entry.reason},
            ip=client_ip(request),
        )
    key = "notice" if done else "error"
    return RedirectResponse(f"/dead-letters?{urlencode({key: notice})}", status_code=303)


async def dead_letter_retry(request: Request) -> Response:
    return await _dead_letter_action(request, "retry")


async def dead_letter_discard(request: Request) -> Response:
    return await _dead_letter_action(request, "discard")
