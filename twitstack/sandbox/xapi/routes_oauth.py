"""OAuth 2.0 Authorization Code + PKCE at X's paths: authorize, the code grant, revoke.

`GET /i/oauth2/authorize` consents at once (as the sandbox's consenting user) and redirects to
the client's `redirect_uri` with `code` and `state`; `PUT /_sandbox/oauth2/consent` makes it
deny instead (`error=access_denied`) or consent as another user. Codes live 30 seconds (X's
figure) on the sandbox clock and open once; a replayed code also revokes what it issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from twitstack.sandbox.xapi.config import ALL_SCOPES, BearerTokenSpec, RefreshTokenSpec
from twitstack.sandbox.xapi.oauth_codes import CODE_TTL_S, AuthorizationCodes, PendingCode
from twitstack.sandbox.xapi.state import XApiState

_INVALID_CODE: dict[str, Any] = {
    "error": "invalid_request",
    "error_description": "Value passed for the authorization code was invalid.",
}
_INVALID_VERIFIER: dict[str, Any] = {
    "error": "invalid_request",
    "error_description": "Value passed for the code verifier did not match the code challenge.",
}
_REDIRECT_MISMATCH: dict[str, Any] = {
    "error": "invalid_request",
    "error_description": "Value passed for the redirect uri did not match the uri of the "
    "authorization code.",
}


class ConsentSwitch(BaseModel):
    """Body of PUT /_sandbox/oauth2/consent."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "deny"] = "approve"
    user_id: str = "1000"


def s256(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _error_page(status: int, message: str) -> HTMLResponse:
    # X shows its own page (no redirect) when the client or redirect_uri cannot be trusted.
    body = (
        "<!doctype html><title>X sandbox</title><h1>Something went wrong</h1>"
        f"<p>{escape(message)}</p>"
    )
    return HTMLResponse(body, status_code=status)


def _redirect(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(params), status_code=302)


def authorize(state: XApiState) -> Callable[[Request], Awaitable[Response]]:
    """GET /i/oauth2/authorize."""

    async def serve(request: Request) -> Response:
        query = request.query_params
        client = state.tokens.clients.get(query.get("client_id", ""))
        redirect_uri = query.get("redirect_uri", "")
        if client is None:
            return _error_page(400, "This app is not known (client_id).")
        if not redirect_uri.startswith(("http://", "https://")):
            return _error_page(400, "redirect_uri is missing or not an http(s) URL.")
        codes: AuthorizationCodes = state.authorization
        reply_state = query.get("state", "")
        if query.get("response_type") != "code":
            return _redirect(
                redirect_uri, {"error": "unsupported_response_type", "state": reply_state}
            )
        challenge, method = query.get("code_challenge", ""), query.get("code_challenge_method", "")
        if not challenge or method not in ("S256", "plain"):
            return _redirect(redirect_uri, {"error": "invalid_request", "state": reply_state})
        scopes = frozenset(query.get("scope", "").split())
        if not scopes or not scopes <= set(ALL_SCOPES):
            return _redirect(redirect_uri, {"error": "invalid_scope", "state": reply_state})
        if codes.decision == "deny":
            return _redirect(redirect_uri, {"error": "access_denied", "state": reply_state})
        code = secrets.token_urlsafe(32)
        codes.codes[code] = PendingCode(
            client.client_id, redirect_uri, codes.user_id, scopes, challenge, method,
            state.clock.now(),
        )  # fmt: skip
        codes.issued += 1
        return _redirect(redirect_uri, {"state": reply_state, "code": code})

    return serve


def exchange_code(state: XApiState, client_id: str, form: dict[str, str]) -> JSONResponse:
    """grant_type=authorization_code for an authenticated client (called by the token route)."""
    codes: AuthorizationCodes = state.authorization
    pending = codes.codes.get(form.get("code", ""))
    if pending is None or pending.client_id != client_id:
        return JSONResponse(_INVALID_CODE, status_code=400)
    if pending.used:
        # RFC 6749 §4.1.2: a code used twice revokes the tokens it already issued.
        if pending.family is not None:
            state.tokens.revoked_families.add(pending.family)
        return JSONResponse(_INVALID_CODE, status_code=400)
    if state.clock.now() - pending.issued_at > CODE_TTL_S:
        return JSONResponse(_INVALID_CODE, status_code=400)
    if form.get("redirect_uri", "") != pending.redirect_uri:
        return JSONResponse(_REDIRECT_MISMATCH, status_code=400)
    verifier = form.get("code_verifier", "")
    expected = s256(verifier) if pending.method == "S256" else verifier
    if not verifier or not hmac.compare_digest(expected, pending.challenge):
        return JSONResponse(_INVALID_VERIFIER, status_code=400)
    pending.used = True
    family = f"family-code-{secrets.token_hex(8)}"
    pending.family = family
    ttl = int(state.tokens.access_ttl_s)
    access = BearerTokenSpec(
        token=secrets.token_urlsafe(32), user_id=pending.user_id, scopes=pending.scopes,
        expires_at=state.clock.now() + ttl, client_id=client_id,
    )  # fmt: skip
    state.tokens.add_bearer(access, family)
    body: dict[str, Any] = {
        "token_type": "bearer",
        "expires_in": ttl,
        "access_token": access.token,
        "scope": " ".join(sorted(pending.scopes)),
    }
    if "offline.access" in pending.scopes:
        refresh = RefreshTokenSpec(
            token=secrets.token_urlsafe(32), user_id=pending.user_id, client_id=client_id,
            scopes=pending.scopes,
        )  # fmt: skip
        state.tokens.add_refresh(refresh, family)
        body["refresh_token"] = refresh.token
    codes.exchanged += 1
    return JSONResponse(body)


def revoke_token(state: XApiState, client_id: str, form: dict[str, str]) -> JSONResponse:
    """POST /2/oauth2/revoke for an authenticated client: the token's whole grant is revoked."""
    token = form.get("token", "")
    tokens = state.tokens
    family = None
    if token in tokens.bearer and tokens.bearer[token].client_id in (client_id, None):
        family = tokens.bearer_family.get(token)
    record = tokens.refresh.get(token)
    if record is not None and record.spec.client_id == client_id:
        family = record.family
    if family is not None:
        tokens.revoked_families.add(family)
        state.authorization.revoked += 1
    # RFC 7009 §2.2: an unknown token is answered like a revoked one.
    return JSONResponse({"revoked": True})


async def _consent(request: Request) -> JSONResponse:
    state: XApiState = request.app.state.xapi
    try:
        switch = ConsentSwitch.model_validate_json(await request.body())
    except ValidationError as exc:
        return JSONResponse({"error": exc.errors(include_url=False)}, status_code=400)
    state.authorization.decision = switch.decision
    state.authorization.user_id = switch.user_id
    return JSONResponse(switch.model_dump())


async def _counts(request: Request) -> JSONResponse:
    codes: AuthorizationCodes = request.app.state.xapi.authorization
    body = {
        "issued": codes.issued, "exchanged": codes.exchanged, "revoked": codes.revoked,
        "decision": codes.decision, "user_id": codes.user_id,
    }  # fmt: skip
    return JSONResponse(body)


def oauth_routes(state: XApiState) -> list[Route]:
    """The authorize page and the sandbox's consent switch (token and revoke: routes_oauth2)."""
    return [
        Route("/i/oauth2/authorize", authorize(state), methods=["GET"]),
        Route("/_sandbox/oauth2/consent", _consent, methods=["PUT"]),
        Route("/_sandbox/oauth2/codes", _counts, methods=["GET"]),
    ]
