"""The fake X API v2 (write side) as a Starlette app: `create_xapi_app()`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from twitstack.sandbox.xapi.config import Endpoint, XApiSandboxConfig
from twitstack.sandbox.xapi.connection import keep_server_channel
from twitstack.sandbox.xapi.inspection import inspection_routes
from twitstack.sandbox.xapi.openapi import openapi_document
from twitstack.sandbox.xapi.pipeline import Handler, api_endpoint
from twitstack.sandbox.xapi.routes_dm import create_dm, dm_events
from twitstack.sandbox.xapi.routes_media import (
    append,
    finalize,
    initialize,
    metadata,
    status,
    upload_simple,
)
from twitstack.sandbox.xapi.routes_oauth import oauth_routes
from twitstack.sandbox.xapi.routes_oauth2 import revoke_endpoint, token_endpoint
from twitstack.sandbox.xapi.routes_posts import create_tweet, delete_tweet, user_tweets, users_me
from twitstack.sandbox.xapi.state import XApiState

_TWEET_WRITE = ("tweet.read", "tweet.write", "users.read")
_DM_WRITE = ("dm.write", "tweet.read", "users.read")
_DM_READ = ("dm.read", "tweet.read", "users.read")
_READ = ("tweet.read", "users.read")
_MEDIA = ("media.write",)


async def _openapi(_: Request) -> JSONResponse:
    return JSONResponse(openapi_document())


def _api_routes(state: XApiState) -> list[BaseRoute]:
    def api(
        endpoint: Endpoint, handler: Handler, scopes: tuple[str, ...], *, write: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        return api_endpoint(state, endpoint, handler, scopes=scopes, write=write)

    dm = "/2/dm_conversations/with/{participant_id}"
    create = api(Endpoint.CREATE_TWEET, create_tweet, _TWEET_WRITE, write=True)
    delete = api(Endpoint.DELETE_TWEET, delete_tweet, _TWEET_WRITE, write=True)
    up, up_status = Endpoint.MEDIA_UPLOAD, Endpoint.MEDIA_STATUS
    media = "/2/media/upload"
    return [
        Route("/2/openapi.json", _openapi, methods=["GET"]),
        Route(media, api(up, upload_simple, _MEDIA, write=True), methods=["POST"]),
        Route(media, api(up_status, status, _MEDIA, write=False), methods=["GET"]),
        Route(f"{media}/initialize", api(up, initialize, _MEDIA, write=True), methods=["POST"]),
        Route(f"{media}/{{id}}/append", api(up, append, _MEDIA, write=True), methods=["POST"]),
        Route(f"{media}/{{id}}/finalize", api(up, finalize, _MEDIA, write=True), methods=["POST"]),
        Route("/2/media/metadata", api(Endpoint.MEDIA_METADATA, metadata, _MEDIA, write=True),
              methods=["POST"]),
        Route("/2/oauth2/token", token_endpoint(state), methods=["POST"]),
        Route("/2/oauth2/revoke", revoke_endpoint(state), methods=["POST"]),
        Route("/2/tweets", create, methods=["POST"]),
        Route("/2/tweets/{id}", delete, methods=["DELETE"]),
        Route("/2/users/me", api(Endpoint.USERS_ME, users_me, _READ, write=False)),
        Route("/2/users/{id}/tweets", api(Endpoint.USER_TWEETS, user_tweets, _READ, write=False)),
        Route(f"{dm}/messages", api(Endpoint.CREATE_DM, create_dm, _DM_WRITE, write=True),
              methods=["POST"]),
        Route(f"{dm}/dm_events", api(Endpoint.DM_EVENTS, dm_events, _DM_READ, write=False)),
    ]  # fmt: skip


def create_xapi_app(
    config: XApiSandboxConfig | None = None, *, state: XApiState | None = None
) -> ASGIApp:
    """Build the fake; pass `state` to share it with the test, or `config` to build a new one.

    The returned app is plain ASGI; the state is reachable as `app.state` of the inner Starlette
    app too, but callers should keep the `XApiState` they passed in.
    """
    state = state if state is not None else XApiState(config)
    app = Starlette(routes=[*_api_routes(state), *oauth_routes(state), *inspection_routes(state)])
    app.state.xapi = state
    return keep_server_channel(app)
