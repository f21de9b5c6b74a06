"""Read-only pages: scheduled requests, history and X accounts."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from twitstack.moderation.access import deps_of, principal_of
from twitstack.moderation.accounts import account_statuses
from twitstack.moderation.card_context import cards_for, post_url
from twitstack.moderation.pagination import PageParams, paginate
from twitstack.moderation.queries import RequestFilter, RequestQueryset
from twitstack.moderation.roles import Role
from twitstack.moderation.spend_view import money, scope_spend, spent_money
from twitstack.moderation.views.render import render
from twitstack.moderation.views.x_account_pages import connected_rows

DEFAULT_POST_URL = "https://x.com/i/web/status/{id}"
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


def tweet_url(result: dict[str, Any] | None, template: str = DEFAULT_POST_URL) -> str | None:
    """A link to the post X created, when the writer recorded its id (under `template`)."""
    if not result:
        return None
    tweet_id = result.get("tweet_id") or result.get("id") or result.get("x_object_id")
    if isinstance(tweet_id, str) and tweet_id.isdigit():
        return post_url(template, tweet_id)
    return None


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
    template = deps.settings.post_url_template
    return render(
        request,
        "history.html",
        {
            "page": page,
            "tab": tab,
            "tabs": list(HISTORY_TABS),
            "filter": flt,
            "tweet_url": lambda result: tweet_url(result, template),
            "cards": await cards_for(deps.db, page.items, template),
            "review_hint": REVIEW_HINTS,
            "nav": "history",
            "tab_url": lambda name: "/history?" + urlencode({"tab": name}),
        },
    )


async def accounts_page(request: Request) -> Response:
    """Rate-limit budgets, pauses and token expiry per X account, as the writer reports them."""
    deps = deps_of(request)
    connected = await connected_rows(deps.x_accounts)
    known = [*deps.known_accounts, *(a.name for a, _ in connected)]
    statuses = await account_statuses(deps.redis, known)
    handles = {a.name: f"@{a.username}" for a, _ in connected}
    names = [status.name for status in statuses]
    spend = await scope_spend(
        deps.redis, deps.spend, names, deps.clock(), quarantine=deps.quarantine
    )
    context = {
        "accounts": statuses, "nav": "accounts", "connected": connected, "handles": handles,
        "total_spend": spend[0], "spend": {s.scope: s for s in spend[1:]},
        "prices_as_of": deps.spend.prices_as_of, "money": money,
        "spent_money": spent_money,
        "is_admin": principal_of(request).user.role >= Role.ADMIN,
    }  # fmt: skip
    return render(request, "accounts.html", context)
