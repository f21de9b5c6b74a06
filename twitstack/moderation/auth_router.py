"""The seed's auth router: `POST /api/auth/token` exchanges an API key for a short-lived JWT."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from twitstack.core.logging import get_logger
from twitstack.moderation.access import client_ip, deps_of, guarded
from twitstack.moderation.apikeys import key_prefix
from twitstack.moderation.body_limit import JsonBodyError, loads_bounded

log = get_logger("twitstack.moderation.auth")


async def issue_token(request: Request) -> Response:
    """Body `{"api_key": "tsk_..."}` → `{"access_token", "token_type", "expires_in"}`."""
    deps = deps_of(request)
    try:
        body = loads_bounded(await request.body())
    except JsonBodyError:
        body = None
    api_key = body.get("api_key") if isinstance(body, dict) else None
    if not isinstance(api_key, str) or not api_key:
        return JSONResponse({"detail": "expected a JSON body with an api_key string"}, 400)
    ip = client_ip(request)
    # Throttled per key prefix and per client, like logins per account and per IP: bad keys
    # from one client must not lock every other API client out. Check, then count failures:
    # the lookup is one cheap hash, and many workers may exchange one good key at once.
    throttle_key = f"apikey:{key_prefix(api_key)}"
    decision = deps.throttle.check(throttle_key, ip)
    if not decision.allowed:
        return JSONResponse(
            {"detail": "too many failed attempts"},
            429,
            headers={"retry-after": str(decision.retry_after_s)},
        )
    key = await deps.apikeys.verify(api_key)
    owner = await deps.users.get(key.owner_id) if key is not None else None
    if key is None or owner is None or owner.disabled:
        deps.throttle.record_failure(throttle_key, ip)
        log.info("moderation.token_refused", ip=ip)
        return JSONResponse({"detail": "invalid API key"}, 401)
    token = deps.tokens.issue(key)
    log.info("moderation.token_issued", key_prefix=key.prefix, user=owner.username)
    return JSONResponse(
        {"access_token": token, "token_type": "bearer", "expires_in": deps.tokens.ttl_s}
    )


def get_auth_router() -> list[Route]:
    """The JWT endpoints, guarded like every other route (CSRF-exempt: no cookie is used)."""
    path = "/api/auth/token"
    return [Route(path, guarded(path, issue_token, csrf_exempt=True), methods=["POST"])]
