"""The queue, a request's detail page, and the edit / approve / reject forms (New: new_pages.py)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from twitstack.moderation.access import client_ip, deps_of, principal_of
from twitstack.moderation.card_context import (
    cards_for,
    context_of,
    describe,
    own_posts,
    parse_context,
    post_url,
    wanted_posts,
)
from twitstack.moderation.decisions import APPROVABLE, REJECTABLE, DecisionError
from twitstack.moderation.dm_privacy import dm_text_visible
from twitstack.moderation.flash import flash_redirect
from twitstack.moderation.list_cache import RenderedList
from twitstack.moderation.media_door import with_alt_texts
from twitstack.moderation.pagination import Page, PageParams, paginate
from twitstack.moderation.policy import check_request, refusal_of
from twitstack.moderation.queries import (
    AGES,
    RequestFilter,
    RequestQueryset,
    RequestRow,
    count_in_state,
    events_for,
)
from twitstack.moderation.revisions import revision_diffs
from twitstack.moderation.roles import Role
from twitstack.moderation.spend_view import card_cost, money, spent_money
from twitstack.moderation.thread_view import live_parts, thread_parts_view
from twitstack.moderation.views.bulk_pages import label_of, reason_from_form
from twitstack.moderation.views.composer_form import (
    ComposeError,
    ComposerValues,
    edited_payload,
    values_from_form,
    values_from_payload,
)
from twitstack.moderation.views.followup_pages import COPYABLE, RETRYABLE
from twitstack.moderation.views.new_pages import quoted_preview
from twitstack.moderation.views.queue_rows import row_views
from twitstack.moderation.views.render import render
from twitstack.moderation.views.safe_display import CheckedHtml
from twitstack.writes.models import ID_PATTERN
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.states import EDITABLE_STATES
from twitstack.writes.text import MAX_TWEET_WEIGHTED_LENGTH, tweet_weighted_length
from twitstack.writes.thread import MAX_THREAD_PARTS

# Held here: pydantic keeps a parametrised model only weakly, and rebuilding Page[RequestRow]
# after a garbage collection took ~5 ms inside a request (a latency spike on the queue page).
_RowsPage = Page[RequestRow]

_AGE_LABELS = {
    "lt1h": "newer than 1 h",
    "gt1h": "older than 1 h",
    "gt24h": "older than 24 h",
    "gt7d": "older than 7 d",
}


def _redirect(path: str, *, notice: str = "", error: str = "") -> RedirectResponse:
    return flash_redirect(path, notice=notice, error=error)


async def _queue_context(request: Request) -> dict[str, Any]:
    """The filter, the pager's numbers and the rendered rows (reused until the data changes)."""
    deps = deps_of(request)
    flt = RequestFilter.from_query(request.query_params, states=("pending",))
    params = PageParams.from_query(request.query_params, default_size=deps.settings.page_size)

    dm_visible = dm_text_visible(request.state.principal)
    can_moderate = principal_of(request).user.role >= Role.MODERATOR

    async def compute() -> RenderedList:
        now = deps.clock()
        page = await paginate(RequestQueryset(deps.db, flt, now=now), params)
        cards = await cards_for(deps.db, page.items, deps.settings.post_url_template)
        context = {
            "rows": row_views(page.items, cards, can_moderate=can_moderate, spend=deps.spend),
            "now": now,
            "dm_visible": dm_visible,
            "can_moderate": can_moderate,
        }
        body = deps.templates.get_template("_queue_rows.html").render(context)
        return RenderedList(body=body, total=page.total, pages=page.pages)

    # Rows differ by whether the caller may read DM text, so that is part of the key.
    key = ("queue", flt, params.page, params.size, dm_visible, can_moderate)
    rows = await deps.lists.fetch(key, compute)
    return {
        "page": _RowsPage(
            items=[], total=rows.total, page=params.page, size=params.size, pages=rows.pages
        ),
        "rows": rows,
        # Safe: produced by our autoescaping _queue_rows.html template, never by a caller.
        "rows_html": CheckedHtml(rows.body),
        "filter": flt,
        "filter_query": urlencode(flt.as_query()),
        "can_moderate": can_moderate,
        "rejection_reasons": deps.settings.rejection_reasons,
    }


async def queue_page(request: Request) -> Response:
    """Pending requests, filtered and paginated; rows refresh themselves via /queue/rows."""
    deps = deps_of(request)
    context = await _queue_context(request)
    request.state.pending_count = (
        context["page"].total
        if not context["filter"].as_query()
        else (await count_in_state(deps.db, "pending"))
    )
    context.update(
        {
            "nav": "queue",
            "accounts": await deps.filter_options.values("account"),
            "authors": await deps.filter_options.values("author"),
            "ages": [(key, _AGE_LABELS[key]) for key in AGES],
            "refresh_ms": int(deps.settings.queue_refresh_interval_s * 1000),
            "rows_url": "/queue/rows?" + urlencode(dict(request.query_params)),
            # A moderator sees the month's spend before approving a batch.
            # (at most a few seconds old: SpendSummary reads Redis once for every poller)
            "spend": await deps.queue_spend.get(
                deps.redis,
                deps.spend,
                deps.known_accounts,
                deps.clock(),
                quarantine=deps.quarantine,
            ),
            "money": money,
            "spent_money": spent_money,
        }
    )
    return render(request, "queue.html", context)


async def queue_rows(request: Request) -> Response:
    """Just the queue's table rows (for the auto-refresh script); the total in a header."""
    context = await _queue_context(request)
    rows: RenderedList = context["rows"]
    return HTMLResponse(rows.body, headers={"x-total-count": str(rows.total)})


def _text_of(payload: dict[str, Any]) -> str:
    text = payload.get("text")
    return text if isinstance(text, str) else ""


def _quote_of(payload: dict[str, Any]) -> object:
    """The post a tweet, or a thread's first part, quotes (None when none)."""
    parts = payload.get("parts")
    if isinstance(parts, list) and parts and isinstance(parts[0], dict):
        return parts[0].get("quote_tweet_id")
    return payload.get("quote_tweet_id")


def _shown_id(request_id: str) -> str:
    return request_id if ID_PATTERN.fullmatch(request_id) else "with that id"


async def detail_page(request: Request) -> Response:
    """One request: text as it will look, weighted count, warnings, source and history."""
    deps = deps_of(request)
    request_id = str(request.path_params["request_id"])
    record = await deps.decisions.get(request_id)
    events = await events_for(deps.db, request_id)
    if record is None:
        return render(
            request,
            "error.html",
            # The id is echoed only when it is one: a crafted link must not put its own
            # words ("Session expired, call ...") on a moderator's screen.
            {"status": 404, "message": f"No request {_shown_id(request_id)} in the ledger."},
            status_code=404,
        )
    req = record.request
    payload = dict(req.payload)
    principal = principal_of(request)
    text = _text_of(payload)
    approvers = await deps.decisions.pending_approvers(req)
    two_person = str(req.action) in deps.settings.two_person_actions
    can_moderate = principal.user.role >= Role.MODERATOR
    ctx = parse_context(context_of(req.payload, req.source))
    template = deps.settings.post_url_template
    card = describe(
        str(req.action),
        ctx,
        state=record.state.value,
        result=record.result,
        own_posts=await own_posts(deps.db, wanted_posts([ctx])),
        url_template=template,
    )
    posted = (record.result or {}).get("tweet_id") if record.state is S.EXECUTED else None
    return render(
        request,
        "detail.html",
        {
            "record": record,
            "req": req,
            "payload_json": json.dumps(payload, indent=2, ensure_ascii=False),
            "text": text,
            "weighted": tweet_weighted_length(text) if str(req.action) == "tweet" else None,
            "max_weighted": MAX_TWEET_WEIGHTED_LENGTH,
            "warnings": check_request(
                str(req.action), payload, account=req.account, source=req.source
            ),
            "refusal": refusal_of(req.source),
            "events": events,
            # Anyone who wrote any revision is an author: someone else must approve.
            "own": principal.user.username in await deps.decisions.authors(req),
            "can_approve": can_moderate and record.state in APPROVABLE,
            "can_reject": can_moderate and record.state in REJECTABLE,
            "can_edit": record.state in EDITABLE_STATES
            and (can_moderate or req.author == principal.user.username)
            and principal.user.role >= Role.AUTHOR,
            "approvers": approvers,
            "two_person": two_person,
            "card": card,
            "posted_id": posted if isinstance(posted, str) else None,
            "posted_url": post_url(template, posted),
            "diffs": await revision_diffs(deps.db, req.id, req.revision),
            "can_retry": principal.user.role >= Role.AUTHOR and record.state in RETRYABLE,
            "can_copy": principal.user.role >= Role.AUTHOR and record.state in COPYABLE,
            "rejection_reasons": deps.settings.rejection_reasons,
            "thread_parts": thread_parts_view(payload) if str(req.action) == "thread" else [],
            "quoted": await deps.quoted_posts.lookup(_quote_of(payload)),
            "live_parts": live_parts(record.result) if str(req.action) == "thread" else [],
            "cost": await card_cost(
                deps.redis,
                deps.spend,
                str(req.action),
                payload,
                req.account,
                deps.clock(),
                quarantine=deps.quarantine,
            ),
            "money": money,
            "spent_money": spent_money,
            "nav": "queue",
        },
    )


async def edit_page(
    request: Request,
    *,
    error: str = "",
    status_code: int = 200,
    values: ComposerValues | None = None,
) -> Response:
    """The edit form for the current revision."""
    deps = deps_of(request)
    request_id = str(request.path_params["request_id"])
    record = await deps.decisions.get(request_id)
    if record is None:
        return render(
            request, "error.html", {"status": 404, "message": "No such request."}, status_code=404
        )
    req = record.request
    text = _text_of(dict(req.payload))
    values = values or values_from_payload(str(req.action), req.payload)
    return render(
        request,
        "edit.html",
        {
            "req": req,
            "record": record,
            "text": text,
            "weighted": tweet_weighted_length(text) if str(req.action) == "tweet" else None,
            "max_weighted": MAX_TWEET_WEIGHTED_LENGTH,
            "warnings": check_request(
                str(req.action), dict(req.payload), account=req.account, source=req.source
            ),
            "composer": str(req.action) in ("tweet", "thread"),
            "values": values,
            "quoted": await quoted_preview(request, values),
            "max_parts": MAX_THREAD_PARTS,
            "error": error,
            "nav": "queue",
        },
        status_code=status_code,
    )


def _revision(form_value: object) -> int:
    try:
        return int(str(form_value))
    except ValueError:
        raise DecisionError(422, "revision: expected the revision number you reviewed") from None


async def edit_submit(request: Request) -> Response:
    """Save a new revision (back to pending; any approval is void)."""
    deps = deps_of(request)
    request_id = str(request.path_params["request_id"])
    form = await request.form()
    record = await deps.decisions.get(request_id)
    if record is None:
        return _redirect("/queue", error=f"No request {request_id}.")
    payload = dict(record.request.payload)
    action = str(record.request.action)
    values = None
    if action in ("tweet", "thread") and "composer" in form:
        values = values_from_form(form)
        try:
            payload = edited_payload(action, payload, values)
        except ComposeError as exc:
            return await edit_page(request, error=str(exc), status_code=422, values=values)
    elif "text" in form:
        payload["text"] = str(form["text"]).replace("\r\n", "\n")
    payload = with_alt_texts(payload, form)
    try:
        revision = await deps.decisions.edit(
            request_id,
            payload,
            expected_revision=_revision(form.get("revision", "")),
            user=principal_of(request).user,
            ip=client_ip(request),
        )
    except DecisionError as exc:
        return await edit_page(request, error=exc.message, status_code=exc.status, values=values)
    return _redirect(f"/requests/{quote(request_id)}", notice=f"Saved as revision {revision}.")


async def approve_submit(request: Request) -> Response:
    """Approve the revision and content the moderator looked at (the form carries both)."""
    deps = deps_of(request)
    request_id = str(request.path_params["request_id"])
    form = await request.form()
    try:
        outcome = await deps.decisions.approve(
            request_id,
            expected_revision=_revision(form.get("revision", "")),
            expected_content_hash=str(form.get("content_hash", "")),
            user=principal_of(request).user,
            ip=client_ip(request),
        )
    except DecisionError as exc:
        return _redirect(f"/requests/{quote(request_id)}", error=exc.message)
    if not outcome.approved:
        return _redirect(
            f"/requests/{quote(request_id)}",
            notice=f"Approval recorded ({len(outcome.approvers)} of {outcome.needed}); "
            "a second moderator must approve.",
        )
    label = await label_of(request, request_id)
    return _redirect("/queue", notice=f"Approved {label}; sent to the writer.")


async def reject_submit(request: Request) -> Response:
    """Reject with a reason (the form requires one; so does the server)."""
    deps = deps_of(request)
    request_id = str(request.path_params["request_id"])
    form = await request.form()
    try:
        await deps.decisions.reject(
            request_id,
            reason=reason_from_form(form, deps.settings.rejection_reasons),
            user=principal_of(request).user,
            ip=client_ip(request),
        )
    except DecisionError as exc:
        return _redirect(f"/requests/{quote(request_id)}", error=exc.message)
    label = await label_of(request, request_id)
    return _redirect("/queue", notice=f"Rejected {label}.")
