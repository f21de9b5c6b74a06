"""After a request ended: retry a failed one, or copy any finished one into a new request.

Both create a *new* pending request (a fresh id, the caller as its author) with the old one's
action, account, payload and source; the old one stays as it ended. Nothing is sent until a
moderator approves the new one, so a retry goes through the same review as anything else.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from twitstack.moderation.access import client_ip, deps_of, principal_of
from twitstack.moderation.decisions import DecisionError
from twitstack.moderation.flash import flash_redirect
from twitstack.writes.models import ModerationStatus as S

RETRYABLE = frozenset({S.FAILED})
COPYABLE = frozenset({S.FAILED, S.REJECTED, S.EXPIRED, S.EXECUTED})


async def _copy(request: Request, *, allowed: frozenset[S], kind: str) -> Response:
    deps = deps_of(request)
    request_id = str(request.path_params["request_id"])
    record = await deps.decisions.get(request_id)
    if record is None:
        return flash_redirect("/history", error="No such request.")
    back = f"/requests/{quote(request_id)}"
    if record.state not in allowed:
        return flash_redirect(back, error=f"Cannot {kind} a request that is {record.state.value}.")
    old = record.request
    message: dict[str, Any] = {
        "action": str(old.action),
        "account": old.account,
        "payload": dict(old.payload),
    }
    if old.source is not None:
        message["source"] = dict(old.source)
    user = principal_of(request).user
    ip = client_ip(request)
    try:
        created, _ = await deps.decisions.create(
            json.dumps(message).encode("utf-8"), user=user, ip=ip
        )
    except DecisionError as exc:
        return flash_redirect(back, error=exc.message)
    await deps.audit.record(
        user.username,
        f"request.{kind}",
        created.id,
        {"from": request_id, "from_state": record.state.value},
        ip=ip,
    )
    if kind == "copy":
        return flash_redirect(
            f"/requests/{quote(created.id)}/edit",
            notice="Copied into a new request: change what you need, then save it.",
        )
    return flash_redirect(
        f"/requests/{quote(created.id)}",
        notice="Retry submitted as a new request; it needs approval like any other.",
    )


async def retry_submit(request: Request) -> Response:
    """A failed request again, as a new request waiting for review."""
    return await _copy(request, allowed=RETRYABLE, kind="retry")


async def copy_submit(request: Request) -> Response:
    """Any finished request's content as a new request, opened for editing."""
    return await _copy(request, allowed=COPYABLE, kind="copy")
