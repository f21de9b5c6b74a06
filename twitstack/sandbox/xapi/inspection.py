"""The /_sandbox/ inspection and control API: what was posted, and knobs for tests and demos."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from twitstack.sandbox.xapi.config import (
    BearerTokenSpec,
    BillingMode,
    Endpoint,
    FaultSettings,
    OAuth1CredentialSpec,
    OAuth2ClientSpec,
    RefreshTokenSpec,
    SandboxUser,
    WindowLimit,
)
from twitstack.sandbox.xapi.faults import ScriptEntry
from twitstack.sandbox.xapi.state import XApiState
from twitstack.sandbox.xapi.store import StoredPost


class _Advance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0)


class _Script(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: Endpoint
    entries: list[ScriptEntry] = Field(min_length=1)


class _Behaviour(BaseModel):
    model_config = ConfigDict(extra="forbid")
    billing: BillingMode | None = None
    dm_read_enabled: bool | None = None
    delete_unknown: Literal["not_found", "deleted_false"] | None = None
    refresh_reuse_revokes_family: bool | None = None
    check_media_ids: bool | None = None


class _Windows(BaseModel):
    model_config = ConfigDict(extra="forbid")
    windows: tuple[WindowLimit, ...]


class _Exhaust(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = None
    window_s: float


Action = Callable[[XApiState, Any, Request], dict[str, Any]]


def _post_json(post: StoredPost) -> dict[str, Any]:
    return asdict(post)


def _body(model: Any, raw: bytes) -> Any:
    return TypeAdapter(model).validate_json(raw or b"{}")


def _route(state: XApiState, path: str, method: str, action: Action, model: Any = None) -> Route:
    async def serve(request: Request) -> Response:
        try:
            payload = _body(model, await request.body()) if model is not None else None
            return JSONResponse(action(state, payload, request))
        except ValidationError as exc:
            errors = json.loads(exc.json(include_url=False, include_input=False))
            return JSONResponse({"error": "invalid body", "details": errors}, status_code=400)
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return Route(f"/_sandbox{path}", serve, methods=[method])


def _posts(state: XApiState, _: None, __: Request) -> dict[str, Any]:
    content = state.content
    return {
        "count": len(content.posts),
        "posts": [_post_json(p) for p in content.posts.values()],
        "deleted_count": len(content.deleted),
        "deleted": [_post_json(p) for p in content.deleted.values()],
    }


def _media(state: XApiState, _: None, __: Request) -> dict[str, Any]:
    items = [
        {"id": m.id, "owner_id": m.owner_id, "media_type": m.media_type, "state": m.state,
         "sha256": m.sha256, "alt_text": m.alt_text, "total_bytes": m.total_bytes,
         "expires_at": m.expires_at, "status_polls": m.polls}
        for m in state.media.items.values()
    ]  # fmt: skip
    return {"count": len(items), "uploads": state.media.uploads, "media": items}


def _one_post(state: XApiState) -> Route:
    """GET /_sandbox/posts/{id}: one post, live or deleted (what "view post" links open)."""

    async def serve(request: Request) -> Response:
        post_id = str(request.path_params["post_id"])
        content = state.content
        post = content.posts.get(post_id) or content.deleted.get(post_id)
        if post is None:
            return JSONResponse({"error": f"no post {post_id[:40]}"}, status_code=404)
        return JSONResponse({"post": _post_json(post), "deleted": post_id in content.deleted})

    return Route("/_sandbox/posts/{post_id}", serve, methods=["GET"])


def _post_counts(state: XApiState, _: None, __: Request) -> dict[str, Any]:
    counts = state.content.post_text_counts()
    return {"counts": dict(counts), "duplicates": {t: n for t, n in counts.items() if n > 1}}


def _dms(state: XApiState, _: None, __: Request) -> dict[str, Any]:
    return {"count": len(state.content.dms), "dms": [asdict(m) for m in state.content.dms]}


def _dm_counts(state: XApiState, _: None, __: Request) -> dict[str, Any]:
    counts = state.content.dm_text_counts()
    return {"counts": dict(counts), "duplicates": {t: n for t, n in counts.items() if n > 1}}


def _deletions(state: XApiState, _: None, __: Request) -> dict[str, Any]:
    deletions = state.content.deletions
    return {"count": len(deletions), "deletions": [asdict(d) for d in deletions]}


def _oauth2(state: XApiState, _: None, __: Request) -> dict[str, Any]:
    counters = state.tokens.counters
    return {"calls": counters.calls, "succeeded": counters.succeeded, "rejected": counters.rejected}


def _reset(state: XApiState, _: None, __: Request) -> dict[str, Any]:
    state.reset()
    return state.summary()


def _advance(state: XApiState, body: _Advance, _: Request) -> dict[str, Any]:
    return {"now": state.clock.advance(body.seconds)}


def _faults(state: XApiState, _: None, __: Request) -> dict[str, Any]:
    return {
        "settings": state.faults.settings.model_dump(mode="json"),
        "pending": state.faults.pending(),
        "fired": [
            {"endpoint": endpoint.value, "fault": str(label), "count": count}
            for (endpoint, label), count in state.faults.fired.items()
        ],
    }


def _set_faults(state: XApiState, body: FaultSettings, request: Request) -> dict[str, Any]:
    state.faults.configure(body)
    return _faults(state, None, request)


def _script(state: XApiState, body: _Script, _: Request) -> dict[str, Any]:
    state.faults.script(body.endpoint, body.entries)
    return {"pending": state.faults.pending()}


def _behaviour(state: XApiState, body: _Behaviour, _: Request) -> dict[str, Any]:
    for name, value in body.model_dump(exclude_none=True).items():
        setattr(state, name, value)
    return state.summary()


def _limits(state: XApiState, body: _Windows, request: Request) -> dict[str, Any]:
    endpoint = Endpoint(request.path_params["endpoint"])
    state.limiter.set_limits(endpoint, body.windows)
    return {"endpoint": endpoint.value, "windows": [w.model_dump() for w in body.windows]}


def _exhaust(state: XApiState, body: _Exhaust, request: Request) -> dict[str, Any]:
    endpoint = Endpoint(request.path_params["endpoint"])
    state.limiter.exhaust(endpoint, body.user_id, window_s=body.window_s)
    return {"endpoint": endpoint.value, "headers": state.limiter.peek(endpoint, body.user_id)}


def _expire(state: XApiState, _: None, request: Request) -> dict[str, Any]:
    state.tokens.expire_bearer(request.path_params["token"])
    return {"expired": True}


def _adder(kind: str, add: Callable[[XApiState, Any], None]) -> Action:
    def action(state: XApiState, body: Any, _: Request) -> dict[str, Any]:
        add(state, body)
        return {"added": kind}

    return action


def inspection_routes(state: XApiState) -> list[Route]:
    """Every /_sandbox/ route, bound to `state`."""
    get, post, put = "GET", "POST", "PUT"
    return [
        _route(state, "/state", get, lambda s, _, __: s.summary()),
        _route(state, "/posts", get, _posts),
        _route(state, "/posts/counts", get, _post_counts),
        _route(state, "/media", get, _media),
        _one_post(state),
        _route(state, "/dms", get, _dms),
        _route(state, "/dms/counts", get, _dm_counts),
        _route(state, "/deletions", get, _deletions),
        _route(state, "/oauth2", get, _oauth2),
        _route(state, "/reset", post, _reset),
        _route(state, "/clock", get, lambda s, _, __: {"now": s.clock.now()}),
        _route(state, "/clock/advance", post, _advance, _Advance),
        _route(state, "/faults", get, _faults),
        _route(state, "/faults", put, _set_faults, FaultSettings),
        _route(state, "/script", post, _script, _Script),
        _route(state, "/behaviour", put, _behaviour, _Behaviour),
        _route(state, "/ratelimits/{endpoint}", put, _limits, _Windows),
        _route(state, "/ratelimits/{endpoint}/exhaust", post, _exhaust, _Exhaust),
        _route(
            state, "/users", post, _adder("user", lambda s, b: s.content.add_user(b)), SandboxUser
        ),
        _route(
            state,
            "/tokens/bearer",
            post,
            _adder("bearer", lambda s, b: s.tokens.add_bearer(b)),
            BearerTokenSpec,
        ),
        _route(state, "/tokens/bearer/{token}/expire", post, _expire),
        _route(
            state,
            "/tokens/refresh",
            post,
            _adder("refresh", lambda s, b: s.tokens.add_refresh(b)),
            RefreshTokenSpec,
        ),
        _route(
            state,
            "/tokens/oauth2-clients",
            post,
            _adder("client", lambda s, b: s.tokens.add_client(b)),
            OAuth2ClientSpec,
        ),
        _route(
            state,
            "/tokens/oauth1",
            post,
            _adder("oauth1", lambda s, b: s.tokens.add_oauth1(b)),
            OAuth1CredentialSpec,
        ),
    ]
