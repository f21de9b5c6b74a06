"""The path every API request takes: auth → billing → rate limit → faults → handler → headers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from twitstack.sandbox.xapi import problems
from twitstack.sandbox.xapi.auth import Principal, authorization_problem
from twitstack.sandbox.xapi.config import BillingMode, Endpoint, FaultKind
from twitstack.sandbox.xapi.connection import ConnectionResetResponse
from twitstack.sandbox.xapi.faults import ScriptedResponse
from twitstack.sandbox.xapi.state import XApiState

SERVER_ERROR_FAULTS = {
    FaultKind.ERROR_500: 500,
    FaultKind.ERROR_502: 502,
    FaultKind.ERROR_503: 503,
    FaultKind.ERROR_504: 504,
}
_PARTIAL_ERROR = {
    "title": "Service Unavailable",
    "detail": "A dependent service was unavailable; some fields may be missing.",
    "type": "about:blank",
}


@dataclass(frozen=True)
class ApiCall:
    """An authenticated, admitted request handed to an endpoint handler."""

    request: Request
    body: bytes
    principal: Principal
    state: XApiState

    @property
    def user_id(self) -> str:
        """The acting user (handlers only run for user-context callers)."""
        assert self.principal.user_id is not None  # app-only callers are refused earlier
        return self.principal.user_id


@dataclass(frozen=True)
class ApiResult:
    """A handler's answer: status and JSON body (problem bodies get their own media type)."""

    status: int
    body: dict[str, Any]
    problem: bool = False


# Handlers never await: the state change and its answer happen atomically.
Handler = Callable[[ApiCall], ApiResult]


def _json(result: ApiResult, headers: dict[str, str]) -> Response:
    if result.problem:
        return problems.problem_response(result.body, result.status, headers)
    return JSONResponse(result.body, status_code=result.status, headers=headers)


def scripted_response(response: ScriptedResponse, headers: dict[str, str]) -> Response:
    merged = {**headers, **response.headers}
    if isinstance(response.body, str):
        return HTMLResponse(response.body, status_code=response.status, headers=merged)
    if response.body is None:
        return Response(status_code=response.status, headers=merged)
    problem = response.status >= 400 and isinstance(response.body, dict)
    media_type = problems.PROBLEM_MEDIA_TYPE if problem else "application/json"
    return JSONResponse(
        response.body, status_code=response.status, headers=merged, media_type=media_type
    )


def _billing_refusal(state: XApiState, headers: dict[str, str]) -> Response | None:
    if state.billing is BillingMode.USAGE_CAPPED:
        return problems.problem_response(problems.USAGE_CAPPED, 429, headers)
    if state.billing is BillingMode.CREDITS_DEPLETED:
        return problems.problem_response(problems.CREDITS_DEPLETED, 402, headers)
    return None


async def _run(
    call: ApiCall, endpoint: Endpoint, handler: Handler, headers: dict[str, str]
) -> Response:
    entry = call.state.faults.next_for(endpoint)
    if entry is None or entry.fault is FaultKind.PASS:
        return _json(handler(call), headers)
    if entry.response is not None:
        if entry.response.commit:
            handler(call)
        return scripted_response(entry.response, headers)
    kind = entry.fault
    latency_s = call.state.faults.latency_s
    if kind in SERVER_ERROR_FAULTS:
        status = SERVER_ERROR_FAULTS[kind]
        return problems.problem_response(problems.server_error(status), status, headers)
    if kind is FaultKind.HTML_503:
        # A CDN in front of X answers on its own: no rate-limit headers.
        return HTMLResponse(problems.CDN_503_HTML, status_code=503)
    if kind is FaultKind.RESET:
        return ConnectionResetResponse()
    if kind is FaultKind.LATENCY:
        await anyio.sleep(latency_s)  # real time: the point is to outlast the client's timeout
        return _json(handler(call), headers)
    result = handler(call)  # every remaining kind acts first, then misbehaves
    if kind is FaultKind.COMMIT_THEN_503:
        return problems.problem_response(problems.server_error(503), 503, headers)
    if kind is FaultKind.COMMIT_THEN_RESET:
        return ConnectionResetResponse()
    if kind is FaultKind.COMMIT_THEN_TIMEOUT:
        await anyio.sleep(latency_s)
        return _json(result, headers)
    if result.status < 300:  # PARTIAL_ERRORS: success data plus an errors array
        result = ApiResult(result.status, {**result.body, "errors": [_PARTIAL_ERROR]})
    return _json(result, headers)


def api_endpoint(
    state: XApiState,
    endpoint: Endpoint,
    handler: Handler,
    *,
    scopes: Iterable[str],
    write: bool,
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint running `handler` behind X's auth, limits and the fault injector."""
    required = frozenset(scopes)

    async def serve(request: Request) -> Response:
        body = await request.body()
        principal = state.authenticator.authenticate(request, body)
        if principal is None:
            # X answers with the anonymous bucket's headers, not the user's window.
            headers = state.limiter.unauthorized(endpoint)
            return problems.problem_response(problems.UNAUTHORIZED, 401, headers)
        refusal = authorization_problem(principal, required, write=write)
        if refusal is not None:
            headers = state.limiter.peek(endpoint, principal.user_id)
            return problems.problem_response(refusal, 403, headers)
        billing = _billing_refusal(state, state.limiter.peek(endpoint, principal.user_id))
        if billing is not None:
            return billing
        decision = state.limiter.consume(endpoint, principal.user_id)
        if not decision.allowed:
            return problems.problem_response(problems.TOO_MANY_REQUESTS, 429, decision.headers)
        call = ApiCall(request=request, body=body, principal=principal, state=state)
        return await _run(call, endpoint, handler, decision.headers)

    return serve


def json_body(call: ApiCall) -> tuple[object, ApiResult | None]:
    """The request's JSON body, or the 400 X sends for a body that is not JSON."""
    try:
        return json.loads(call.body or b"null"), None
    except (ValueError, UnicodeDecodeError):
        found = [("body", call.body.decode("utf-8", "replace")[:200], "Body is not valid JSON")]
        return None, ApiResult(400, problems.invalid_request(found), problem=True)
