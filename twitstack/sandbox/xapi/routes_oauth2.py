"""POST /2/oauth2/token (refresh_token grant with single-use, rotating refresh tokens; the
authorization_code grant in routes_oauth) and POST /2/oauth2/revoke."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from twitstack.sandbox.xapi import problems
from twitstack.sandbox.xapi.config import Endpoint, FaultKind
from twitstack.sandbox.xapi.connection import ConnectionResetResponse
from twitstack.sandbox.xapi.pipeline import SERVER_ERROR_FAULTS, scripted_response
from twitstack.sandbox.xapi.routes_oauth import exchange_code, revoke_token
from twitstack.sandbox.xapi.state import XApiState

_UNAUTHORIZED_CLIENT: dict[str, Any] = {
    "error": "unauthorized_client",
    "error_description": "Missing valid authorization header",
}
_UNSUPPORTED_GRANT: dict[str, Any] = {
    "error": "unsupported_grant_type",
    "error_description": "Value passed for the grant type was invalid.",
}


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[len("Basic ") :], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    # RFC 6749 §2.3.1: both halves are form-encoded before being joined.
    return (unquote(client_id), unquote(secret)) if sep else None


def _client_id(state: XApiState, request: Request, form: dict[str, str]) -> str | None:
    """The authenticated client: Basic auth for confidential clients, `client_id` for public."""
    basic = _basic_credentials(request)
    if basic is not None:
        client = state.tokens.clients.get(basic[0])
        secret = client.client_secret if client is not None else None
        if secret is None or not hmac.compare_digest(secret, basic[1]):
            return None
        return basic[0]
    client = state.tokens.clients.get(form.get("client_id", ""))
    if client is None or client.client_secret is not None:
        return None
    return client.client_id


def token_endpoint(state: XApiState) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The Starlette endpoint for POST /2/oauth2/token."""

    async def serve(request: Request) -> JSONResponse:
        raw = await request.body()
        form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        tokens = state.tokens
        tokens.counters.calls += 1
        client_id = _client_id(state, request, form)
        if client_id is None:
            tokens.counters.rejected += 1
            return JSONResponse(_UNAUTHORIZED_CLIENT, status_code=401)
        if form.get("grant_type") == "authorization_code":
            return exchange_code(state, client_id, form)
        if form.get("grant_type") != "refresh_token":
            tokens.counters.rejected += 1
            return JSONResponse(_UNSUPPORTED_GRANT, status_code=400)
        presented = form.get("refresh_token", "")
        pair = tokens.rotate(presented, client_id)
        if pair is None:
            tokens.counters.rejected += 1
            family = tokens.was_spent(presented)
            if family is not None and state.refresh_reuse_revokes_family:
                # Reuse suggests a stolen token: kill everything descended from the grant.
                tokens.revoked_families.add(family)
            return JSONResponse(problems.INVALID_REFRESH_TOKEN, status_code=400)
        tokens.counters.succeeded += 1
        return JSONResponse(
            {
                "token_type": "bearer",
                "expires_in": pair.expires_in,
                "access_token": pair.access.token,
                "scope": " ".join(sorted(pair.access.scopes)),
                "refresh_token": pair.refresh.token,
            }
        )

    return serve


def revoke_endpoint(state: XApiState) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for POST /2/oauth2/revoke (same client authentication).

    Faults and scripts for `oauth2_revoke` apply after authentication, so a test can make X
    fail to revoke (5xx, a CDN page, a reset) and check the grant is still alive afterwards;
    `commit_then_*` kinds and `commit=True` responses revoke first, then misbehave.
    """

    async def serve(request: Request) -> Response:
        raw = await request.body()
        form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        client_id = _client_id(state, request, form)
        if client_id is None:
            return JSONResponse(_UNAUTHORIZED_CLIENT, status_code=401)
        entry = state.faults.next_for(Endpoint.OAUTH2_REVOKE)
        if entry is None or entry.fault in (FaultKind.PASS, FaultKind.LATENCY,
                                            FaultKind.PARTIAL_ERRORS):  # fmt: skip
            return revoke_token(state, client_id, form)
        if entry.response is not None:
            if entry.response.commit:
                revoke_token(state, client_id, form)
            return scripted_response(entry.response, {})
        kind = entry.fault
        if kind in SERVER_ERROR_FAULTS:
            status = SERVER_ERROR_FAULTS[kind]
            return problems.problem_response(problems.server_error(status), status, {})
        if kind is FaultKind.HTML_503:
            return HTMLResponse(problems.CDN_503_HTML, status_code=503)
        if kind is FaultKind.RESET:
            return ConnectionResetResponse()
        revoke_token(state, client_id, form)  # the commit_then_* kinds: revoked, answer lost
        if kind is FaultKind.COMMIT_THEN_RESET:
            return ConnectionResetResponse()
        return problems.problem_response(problems.server_error(503), 503, {})

    return serve
