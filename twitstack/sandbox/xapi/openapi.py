"""A small OpenAPI document describing the endpoints the fake serves (GET /2/openapi.json)."""

from __future__ import annotations

from typing import Any

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _op(operation_id: str, summary: str, status: str, security: list[str]) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "security": [{"OAuth2UserToken": security}, {"UserToken": []}],
        "responses": {
            status: {"description": "Success"},
            "default": {
                "description": "Problem",
                "content": {"application/problem+json": {"schema": _PROBLEM}},
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """The document; `info.title` marks it as the sandbox, not X's."""
    tweet_scopes = ["tweet.read", "tweet.write", "users.read"]
    dm_scopes = ["dm.write", "tweet.read", "users.read"]
    return {
        "openapi": "3.0.0",
        "info": {"title": "X API v2 (twitstack sandbox)", "version": "2.167-sandbox"},
        "servers": [{"url": "/"}],
        "paths": {
            "/2/tweets": {"post": _op("createPosts", "Create a post", "201", tweet_scopes)},
            "/2/tweets/{id}": {"delete": _op("deletePosts", "Delete a post", "200", tweet_scopes)},
            "/2/users/me": {
                "get": _op("getUsersMe", "The authenticated user", "200", ["users.read"])
            },
            "/2/users/{id}/tweets": {
                "get": _op("getUsersPosts", "A user's posts", "200", ["tweet.read"])
            },
            "/2/dm_conversations/with/{participant_id}/messages": {
                "post": _op("createDirectMessagesByParticipantId", "Send a DM", "201", dm_scopes)
            },
            "/2/dm_conversations/with/{participant_id}/dm_events": {
                "get": _op(
                    "getDirectMessagesEventsByParticipantId",
                    "Read DMs",
                    "200",
                    ["dm.read", "tweet.read", "users.read"],
                )
            },
            "/2/oauth2/token": {"post": {"operationId": "oauth2Token", "responses": {}}},
        },
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "detail": {"type": "string"},
                        "status": {"type": "integer"},
                    },
                }
            },
            "securitySchemes": {
                "OAuth2UserToken": {"type": "oauth2", "flows": {}},
                "UserToken": {"type": "http", "scheme": "OAuth"},
            },
        },
    }
