"""Scripted failures the GraphQL fake answers with, in the shapes X uses for them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.responses import HTMLResponse, JSONResponse, Response

from twitstack.sandbox.graphql.shapes import error_body

FaultKind = Literal[
    "rate_limit",  # 429 + x-rate-limit-remaining: 0 and a reset time: twscrape locks and rotates
    "suspended",  # 403 code 64: twscrape returns it as "no results" and keeps the account active
    "auth_failed",  # 401 code 32: twscrape marks the account inactive
    "html_503",  # an HTML error page (Cloudflare-style): twscrape aborts and yields nothing
    "features_outdated",  # 400 code 336: twscrape raises GqlFeaturesOutdatedError
    "server_error",  # a plain 500: twscrape locks the account 15 minutes on that queue
    # 404 with an empty body, how X answers stale query ids or a bad x-client-transaction-id:
    # twscrape regenerates the id, retries 3 times, then yields nothing as if all were well.
    "not_found_empty",
    # 400 with errors and no data (variables or query X no longer accepts): twscrape logs it
    # once and yields nothing.
    "bad_request",
    "empty_timeline",  # 200 with a valid but empty timeline: "nothing new", or silent drift
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "rate_limit",
    "suspended",
    "auth_failed",
    "html_503",
    "features_outdated",
    "server_error",
    "not_found_empty",
    "bad_request",
    "empty_timeline",
)


@dataclass
class Fault:
    """Answer the next `times` matching requests with `kind` (op/account None match any)."""

    kind: FaultKind
    op: str | None = None
    account: str | None = None  # the auth_token cookie, which identifies a scraping account
    times: int = 1
    reset_after_s: int = 900

    def matches(self, op: str, account: str | None) -> bool:
        return (
            self.times > 0
            and (self.op is None or self.op == op)
            and (self.account is None or self.account == account)
        )


def fault_response(fault: Fault, now: float) -> Response:
    """The HTTP response X sends for this kind of failure."""
    if fault.kind == "rate_limit":
        return JSONResponse(
            error_body(88, "Rate limit exceeded"),
            status_code=429,
            headers={
                "x-rate-limit-limit": "50",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(now) + fault.reset_after_s),
            },
        )
    if fault.kind == "suspended":
        return JSONResponse(
            error_body(
                64, "Your account is suspended and is not permitted to access this feature."
            ),
            status_code=403,
        )
    if fault.kind == "auth_failed":
        return JSONResponse(error_body(32, "Could not authenticate you."), status_code=401)
    if fault.kind == "html_503":
        return HTMLResponse(
            "<html><head><title>503 Service Temporarily Unavailable</title></head>"
            "<body><h1>Service Temporarily Unavailable</h1></body></html>",
            status_code=503,
        )
    if fault.kind == "features_outdated":
        return JSONResponse(
            error_body(336, "The following features cannot be null: rweb_new_feature_enabled"),
            status_code=400,
        )
    if fault.kind == "not_found_empty":
        return Response(b"", status_code=404)
    if fault.kind == "bad_request":
        return JSONResponse(error_body(0, "Query: Unspecified"), status_code=400)
    if fault.kind == "empty_timeline":
        empty = {"instructions": [{"type": "TimelineAddEntries", "entries": []}]}
        return JSONResponse(
            {"data": {"search_by_raw_query": {"search_timeline": {"timeline": empty}}}}
        )
    # No "errors" key: twscrape then sees a bare non-2xx status and locks the account.
    return JSONResponse({"detail": "Internal error"}, status_code=500)
