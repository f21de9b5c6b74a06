"""The one counting rule: the browser's live counter asks the server, which counts as X does.

The counter, the preview and the policy warnings on the edit and new-request pages come from
here (debounced by app.js), so what the page says before saving is what the server and the
writer will say after: twitter-text's weighting (URLs 23, CJK and emoji 2), on the NFC text.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from twitstack.moderation.access import deps_of
from twitstack.moderation.policy import check_request
from twitstack.writes.text import (
    MAX_TWEET_RAW_CHARS,
    MAX_TWEET_WEIGHTED_LENGTH,
    tweet_weighted_length,
)

# A little over the text limit: the JSON quoting of a 10 000-character text can double it.
MAX_CHECK_BODY = 4 * MAX_TWEET_RAW_CHARS + 1024


def _bad(message: str, status: int = 422) -> Response:
    return JSONResponse({"detail": message}, status_code=status)


def counted(text: str) -> dict[str, Any]:
    """The weighted length as the server and the writer count it, with X's limit."""
    weighted = tweet_weighted_length(text)
    return {
        "weighted": weighted,
        "max": MAX_TWEET_WEIGHTED_LENGTH,
        "over": weighted > MAX_TWEET_WEIGHTED_LENGTH,
    }


async def check_text(request: Request) -> Response:
    """POST {"text", optional "request_id"}: the weighted count and the warnings for that text.

    With a request id, the warnings are those of that request (its account, reply and source)
    with the text replaced, as the edit would be saved.
    """
    body = await request.body()
    if len(body) > MAX_CHECK_BODY:
        return _bad("text: too long to check", 413)
    try:
        data = json.loads(body)
    except ValueError:
        return _bad("expected a JSON object", 400)
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return _bad("text: expected a string")
    text = data["text"].replace("\r\n", "\n")
    if len(text) > MAX_TWEET_RAW_CHARS:
        return _bad(f"text: at most {MAX_TWEET_RAW_CHARS} characters")
    payload: dict[str, Any] = {"text": text}
    account, source, action = "default", None, "tweet"
    request_id = data.get("request_id")
    if isinstance(request_id, str) and request_id:
        record = await deps_of(request).decisions.get(request_id)
        if record is None:
            return _bad("request_id: no such request", 404)
        payload = {**record.request.payload, "text": text}
        account, source = record.request.account, record.request.source
        action = str(record.request.action)
    warnings = check_request(action, payload, account=account, source=source)
    result: dict[str, Any] = (
        counted(text) if action == "tweet" else {"weighted": None, "max": None, "over": False}
    )
    result["warnings"] = [asdict(w) for w in warnings]
    return JSONResponse(result, headers={"cache-control": "no-store"})
