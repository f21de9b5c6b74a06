"""The New form: draft a tweet, a thread, a poll or a quote for review, preview it, submit it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from twitstack.moderation.access import client_ip, deps_of, principal_of, read_form
from twitstack.moderation.decisions import DecisionError
from twitstack.moderation.flash import flash_redirect
from twitstack.moderation.media_door import MediaDoorError, form_attachments
from twitstack.moderation.quoted_posts import QuotedPost
from twitstack.moderation.thread_view import preview_parts
from twitstack.moderation.views.composer_form import (
    ComposeError,
    ComposerValues,
    compose_payload,
    values_from_form,
)
from twitstack.moderation.views.render import render
from twitstack.writes.errors import PayloadError
from twitstack.writes.post_ref import parse_post_ref
from twitstack.writes.thread import MAX_THREAD_PARTS


async def quoted_preview(request: Request, values: ComposerValues) -> QuotedPost | None:
    """The preview of the post the composer's quote field names, if it names one."""
    try:
        tweet_id = parse_post_ref(values.quote) if values.quote else None
    except PayloadError:
        return None
    return await deps_of(request).quoted_posts.lookup(tweet_id)


def _account_choices(request: Request) -> list[str]:
    """TOML accounts, then connected ones (their labels, kept current in x_handles)."""
    deps = deps_of(request)
    connected = deps.templates.globals.get("x_handles")
    labels = list(connected) if isinstance(connected, dict) else []
    return [*deps.known_accounts, *(n for n in labels if n not in deps.known_accounts)]


async def new_page(
    request: Request,
    *,
    error: str = "",
    status_code: int = 200,
    values: ComposerValues | None = None,
    preview: dict[str, Any] | None = None,
) -> Response:
    """A form to draft a tweet, a thread, a poll or a quote for review (and to preview it)."""
    values = values or ComposerValues()
    return render(
        request,
        "new.html",
        {
            "error": error,
            "nav": "new",
            "accounts": _account_choices(request),
            "values": values,
            "quoted": await quoted_preview(request, values),
            "max_parts": MAX_THREAD_PARTS,
            "preview": None if preview is None else preview_parts(preview),
        },
        status_code=status_code,
    )


async def new_submit(request: Request) -> Response:
    deps = deps_of(request)
    form = await read_form(request)
    values = values_from_form(form)
    try:
        action, payload = compose_payload(values)
    except ComposeError as exc:
        return await new_page(request, error=str(exc), status_code=422, values=values)
    if form.get("preview"):
        # Nothing is recorded: the form comes back with the quoted post and exact counts.
        return await new_page(request, values=values, preview=payload)
    message: dict[str, Any] = {"action": action, "payload": payload}
    account = str(form.get("account", "")).strip()
    if account:
        message["account"] = account
    reply_to = str(form.get("reply_to", "")).strip()
    if reply_to:
        message["payload"]["reply"] = {"in_reply_to_tweet_id": reply_to}
    try:
        attachments = await form_attachments(deps, form, uploader=principal_of(request).user.id)
    except MediaDoorError as exc:
        return await new_page(
            request, error=f"Media: {exc.message}", status_code=exc.status, values=values
        )
    if attachments and action != "tweet":
        return await new_page(
            request, error="Media: a thread's parts cannot carry media yet; post it alone.",
            status_code=422, values=values,
        )  # fmt: skip
    if attachments:
        message["payload"]["media"] = {"attachments": attachments}
        if not message["payload"]["text"].strip():
            del message["payload"]["text"]  # a post may be media alone
    not_before = str(form.get("not_before", "")).strip()
    if not_before:
        try:
            when = datetime.fromisoformat(not_before).replace(tzinfo=UTC)
        except ValueError:
            return await new_page(
                request, error="Schedule: expected a date and time.", status_code=422,
                values=values,
            )  # fmt: skip
        message["not_before"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    raw = json.dumps(message).encode("utf-8")
    try:
        created, _ = await deps.decisions.create(
            raw, user=principal_of(request).user, ip=client_ip(request)
        )
    except DecisionError as exc:
        return await new_page(request, error=exc.message, status_code=exc.status, values=values)
    return flash_redirect(f"/requests/{quote(created.id)}", notice="Submitted for review.")
