"""The dead-letter pages: a list of short previews, one entry in full (audited), retry, discard."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from twitstack.moderation.access import client_ip, deps_of, principal_of
from twitstack.moderation.dead_letters import printable
from twitstack.moderation.flash import flash_redirect
from twitstack.moderation.views.render import render


async def dead_letters_page(request: Request) -> Response:
    """Messages the writer could not take, with why; DM and tweet text only as a preview."""
    deps = deps_of(request)
    entries = await deps.dead_letters.list()
    return render(
        request,
        "dead_letters.html",
        {"entries": entries, "total": await deps.dead_letters.count(), "nav": "dead"},
    )


def _pretty(message: str) -> str:
    try:
        # `\ud800` escapes (the writer dead-letters them as invalid_unicode) decode to lone
        # surrogates, which cannot be sent as UTF-8: shown as U+FFFD.
        return printable(json.dumps(json.loads(message), indent=2, ensure_ascii=False))
    except ValueError:
        return message


async def dead_letter_detail(request: Request) -> Response:
    """One entry with its full message, opened on purpose; who opened it goes in the audit log."""
    deps = deps_of(request)
    entry_id = str(request.path_params["entry_id"])
    entry = await deps.dead_letters.find(entry_id)
    if entry is None:
        return render(
            request,
            "error.html",
            {"status": 404, "message": "No such dead letter (already retried or discarded?)."},
            status_code=404,
        )
    # Reading a DM's text is itself worth a trace; the row holds the id, never the text.
    await deps.audit.record(
        principal_of(request).user.username,
        "dead_letter.view",
        entry.id,
        {"reason": entry.reason},
        ip=client_ip(request),
    )
    full = entry.message if entry.message is not None else entry.raw.decode("utf-8", "replace")
    return render(
        request,
        "dead_letter.html",
        {"entry": entry, "full_message": _pretty(full), "nav": "dead"},
    )


async def _dead_letter_action(request: Request, action: str) -> Response:
    deps = deps_of(request)
    entry_id = str(request.path_params["entry_id"])
    entry = await deps.dead_letters.find(entry_id)
    if entry is None:
        return flash_redirect("/dead-letters", error="Entry already handled.")
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
    if done:
        return flash_redirect("/dead-letters", notice=notice)
    return flash_redirect("/dead-letters", error=notice)


async def dead_letter_retry(request: Request) -> Response:
    return await _dead_letter_action(request, "retry")


async def dead_letter_discard(request: Request) -> Response:
    return await _dead_letter_action(request, "discard")
