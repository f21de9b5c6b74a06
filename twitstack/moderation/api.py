"""The JSON API: list, create, read, edit, approve and reject write requests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from twitstack.moderation.access import client_ip, deps_of, principal_of
from twitstack.moderation.body_limit import JsonBodyError, JsonTooDeepError, loads_bounded
from twitstack.moderation.decisions import DecisionError
from twitstack.moderation.dm_privacy import dm_text_visible, redact_detail, redact_summary
from twitstack.moderation.idempotency import run_idempotent
from twitstack.moderation.list_cache import RenderedList
from twitstack.moderation.media_door import MediaDoorError, check_attachments
from twitstack.moderation.pagination import MAX_PAGE_SIZE, PageParams, paginate
from twitstack.moderation.policy import check_request
from twitstack.moderation.queries import (
    ACTIONS,
    AGES,
    SORTS,
    RequestFilter,
    RequestQueryset,
    events_for,
)
from twitstack.moderation.thread_view import live_parts, thread_parts_view
from twitstack.moderation.views.attachments import attachments_of
from twitstack.writes.ledger_types import LedgerRecord
from twitstack.writes.models import MAX_REVISION, ModerationStatus, WriteAction
from twitstack.writes.text import tweet_weighted_length

MAX_BODY_BYTES = 64 * 1024
_STATES = tuple(s.value for s in ModerationStatus)


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": message}
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status)


def _query_error(query: Mapping[str, str]) -> str | None:
    """Strict checks of list parameters: the API says what is wrong instead of ignoring it."""
    choices = {"state": _STATES, "action": ACTIONS, "age": tuple(AGES), "sort": SORTS}
    for name, allowed in choices.items():
        if name in query and query[name] not in allowed:
            return f"{name}: expected one of {', '.join(allowed)}, found {query[name]!r}"
    limits = {"page": (1, 1_000_000), "size": (1, MAX_PAGE_SIZE)}
    for name, (low, high) in limits.items():
        if name in query:
            value = query[name]
            # ASCII digits only: isdigit() also passes "²", which int() refuses (a 500).
            if not (value.isascii() and value.isdigit() and len(value) <= 7) or not (
                low <= int(value) <= high
            ):
                return f"{name}: expected an integer {low}-{high}, found {value!r}"
    for name in ("account", "author"):
        if len(query.get(name, "")) > 256:
            return f"{name}: at most 256 characters"
    return None


async def list_requests(request: Request) -> Response:
    """GET /api/requests: one page of requests in a state (pending by default)."""
    deps = deps_of(request)
    problem = _query_error(request.query_params)
    if problem:
        return _error(422, problem)
    state = request.query_params.get("state", "pending")
    flt = RequestFilter.from_query(request.query_params, states=(state,))
    params = PageParams.from_query(request.query_params, default_size=deps.settings.page_size)

    dm_visible = dm_text_visible(principal_of(request))

    async def compute() -> RenderedList:
        page = await paginate(RequestQueryset(deps.db, flt, now=deps.clock()), params)
        document = {
            "items": [redact_summary(row.summary(), dm_visible) for row in page.items],
            "total": page.total,
            "page": page.page,
            "size": page.size,
            "pages": page.pages,
        }
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        return RenderedList(body=body, total=page.total, pages=page.pages)

    # The same page for every caller allowed to list (one copy with DM text, one without):
    # reused until the projection changes.
    key = ("api", flt, params.page, params.size, dm_visible)
    cached = await deps.lists.fetch(key, compute)
    return Response(cached.body, media_type="application/json")


def _warnings(record: LedgerRecord) -> list[dict[str, str]]:
    """What the review page warns of: the policy's warnings, then its attachments' (a quote,
    a poll, media by id, missing alt text), each code once."""
    req = record.request
    payload = dict(req.payload)
    found = check_request(str(req.action), payload, account=req.account, source=req.source)
    codes = {w.code for w in found}
    found += [w for w in attachments_of(str(req.action), payload).warnings if w.code not in codes]
    return [{"code": w.code, "message": w.message, "level": w.level} for w in found]


def _detail(record: LedgerRecord, *, approved: bool) -> dict[str, Any]:
    req = record.request
    payload = dict(req.payload)
    text = payload.get("text") if isinstance(payload.get("text"), str) else None
    return {
        "id": req.id,
        "action": str(req.action),
        "account": req.account,
        "author": req.author,
        "state": record.state.value,
        "revision": req.revision,
        "content_hash": req.content_hash(),
        "payload": payload,
        "source": None if req.source is None else dict(req.source),
        "created_at": req.created_at.timestamp(),
        "updated_at": record.updated_at.timestamp(),
        "not_before": None if req.not_before is None else req.not_before.timestamp(),
        # A verified approval in the ledger's state, never a claim a pending record carries.
        "approved": approved,
        "weighted_length": tweet_weighted_length(text) if text is not None else None,
        "warnings": _warnings(record),
        "result": None if record.result is None else dict(record.result),
        "last_reason": record.last_reason,
        # A thread: its parts as reviewed, and the parts X has (all of them once executed;
        # after a permanent refusal mid-thread, those a human must know are live).
        "parts": thread_parts_view(payload) if req.action == WriteAction.THREAD else None,
        "live_parts": live_parts(record.result) if req.action == WriteAction.THREAD else None,
    }


async def _body(request: Request) -> tuple[bytes, Any] | JSONResponse:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return _error(413, f"body: at most {MAX_BODY_BYTES} bytes")
    try:
        return raw, loads_bounded(raw) if raw else None
    except JsonTooDeepError as exc:
        return _error(400, f"body: {exc}")
    except JsonBodyError as exc:
        return _error(422, f"body: {exc}")


async def _idempotent(request: Request, raw: bytes, handler: Any) -> Response:
    deps = deps_of(request)
    principal = principal_of(request).user.username
    return await run_idempotent(
        request,
        deps.db,
        principal,
        raw,
        handler,
        now=deps.clock(),
        ttl_s=deps.settings.idempotency_ttl_s,
    )


async def create_request(request: Request) -> Response:
    """POST /api/requests: a queue-format message, validated and recorded as pending."""
    deps = deps_of(request)
    parsed = await _body(request)
    if isinstance(parsed, JSONResponse):
        return parsed
    raw, sent = parsed
    payload = sent.get("payload") if isinstance(sent, dict) else None

    async def handler() -> JSONResponse:
        try:
            await check_attachments(deps, payload)
        except MediaDoorError as exc:
            return _error(exc.status, exc.message, exc.field)
        try:
            created, new = await deps.decisions.create(
                raw, user=principal_of(request).user, ip=client_ip(request)
            )
        except DecisionError as exc:
            return _error(exc.status, exc.message, exc.field)
        record = await deps.decisions.get(created.id)
        state = record.state.value if record else "pending"
        body = {"id": created.id, "state": state, "revision": created.revision, "created": new}
        return JSONResponse(body, status_code=201 if new else 200)

    return await _idempotent(request, raw, handler)


async def get_request(request: Request) -> Response:
    """GET /api/requests/{id}: the current revision, warnings and event history."""
    deps = deps_of(request)
    request_id = str(request.path_params["request_id"])
    record = await deps.decisions.get(request_id)
    if record is None:
        return _error(404, f"request {request_id} not found")
    detail = _detail(record, approved=deps.decisions.has_verified_approval(record))
    body = redact_detail(detail, dm_text_visible(principal_of(request)))
    if body.get("text_hidden"):
        # A hash of a short DM would let its text be confirmed by guessing; viewers cannot
        # approve, so they never need it.
        body["content_hash"] = None
    body["events"] = [
        {
            "from": e.from_state or None,
            "to": e.to_state,
            "actor": e.actor,
            "reason": e.reason,
            "at": e.at,
            "revision": e.revision,
        }
        for e in await events_for(deps.db, request_id)
    ]
    return JSONResponse(body)


def _int_field(body: Any, name: str) -> int | None:
    value = body.get(name) if isinstance(body, dict) else None
    return value if type(value) is int and 1 <= value <= MAX_REVISION else None


async def edit_request(request: Request) -> Response:
    """PATCH /api/requests/{id}: `{"revision": n, "payload": {...}}` makes revision n+1."""
    deps = deps_of(request)
    parsed = await _body(request)
    if isinstance(parsed, JSONResponse):
        return parsed
    _, body = parsed
    revision = _int_field(body, "revision")
    if revision is None:
        return _error(422, "revision: expected the integer revision you are editing", "revision")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        return _error(422, "payload: expected an object", "payload")
    request_id = str(request.path_params["request_id"])
    try:
        await check_attachments(deps, payload)
    except MediaDoorError as exc:
        return _error(exc.status, exc.message, exc.field)
    try:
        new_revision = await deps.decisions.edit(
            request_id,
            payload,
            expected_revision=revision,
            user=principal_of(request).user,
            ip=client_ip(request),
        )
    except DecisionError as exc:
        return _error(exc.status, exc.message, exc.field)
    return JSONResponse({"id": request_id, "state": "pending", "revision": new_revision})


async def approve_request(request: Request) -> Response:
    """POST /api/requests/{id}/approve: `{"revision": n, "content_hash": h}` from a GET.

    Signs only if the ledger still holds revision n with content hash h; 409 otherwise.
    """
    deps = deps_of(request)
    parsed = await _body(request)
    if isinstance(parsed, JSONResponse):
        return parsed
    raw, body = parsed
    revision = _int_field(body, "revision")
    if revision is None:
        return _error(422, "revision: expected the integer revision you reviewed", "revision")
    content_hash = body.get("content_hash") if isinstance(body, dict) else None
    if not isinstance(content_hash, str) or not content_hash:
        return _error(
            422,
            "content_hash: expected the content_hash of the revision you reviewed "
            "(GET /api/requests/{id} gives it)",
            "content_hash",
        )
    request_id = str(request.path_params["request_id"])

    async def handler() -> JSONResponse:
        try:
            outcome = await deps.decisions.approve(
                request_id,
                expected_revision=revision,
                expected_content_hash=content_hash,
                user=principal_of(request).user,
                ip=client_ip(request),
            )
        except DecisionError as exc:
            return _error(exc.status, exc.message, exc.field)
        return JSONResponse(
            {
                "id": request_id,
                "approved": outcome.approved,
                "approvers": list(outcome.approvers),
                "needed": outcome.needed,
            }
        )

    return await _idempotent(request, raw, handler)


async def reject_request(request: Request) -> Response:
    """POST /api/requests/{id}/reject: `{"reason": "..."}` (required)."""
    deps = deps_of(request)
    parsed = await _body(request)
    if isinstance(parsed, JSONResponse):
        return parsed
    raw, body = parsed
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str):
        return _error(422, "reason: expected a string", "reason")
    request_id = str(request.path_params["request_id"])

    async def handler() -> JSONResponse:
        try:
            await deps.decisions.reject(
                request_id, reason=reason, user=principal_of(request).user, ip=client_ip(request)
            )
        except DecisionError as exc:
            return _error(exc.status, exc.message, exc.field)
        return JSONResponse({"id": request_id, "state": "rejected"})

    return await _idempotent(request, raw, handler)
