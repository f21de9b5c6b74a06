"""The hand-written OpenAPI 3.1 document of the JSON API, served at /openapi.json."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from twitstack import __version__
from twitstack.moderation.openapi_fragments import (
    ERROR,
    ID_PARAM,
    IDEMPOTENCY,
    body,
    errors,
    ref,
    reply,
)
from twitstack.moderation.openapi_schemas import SCHEMAS
from twitstack.moderation.pagination import MAX_PAGE_SIZE
from twitstack.moderation.queries import ACTIONS, AGES, SORTS
from twitstack.writes.models import ModerationStatus


def build_document() -> dict[str, Any]:
    """The OpenAPI document (a fresh dict each call)."""
    list_params = [
        {"name": "state", "in": "query", "schema": {"enum": [s.value for s in ModerationStatus]}},
        {"name": "action", "in": "query", "schema": {"enum": list(ACTIONS)}},
        {"name": "account", "in": "query", "schema": {"type": "string", "maxLength": 64}},
        {"name": "author", "in": "query", "schema": {"type": "string", "maxLength": 256}},
        {"name": "age", "in": "query", "schema": {"enum": list(AGES)}},
        {"name": "sort", "in": "query", "schema": {"enum": list(SORTS)}},
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {
            "name": "size",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        },
    ]
    return {
        "openapi": "3.1.0",
        "info": {"title": "twitstack moderation API", "version": __version__},
        "security": [{"bearer": []}],
        "paths": {
            "/api/auth/token": {
                "post": {
                    "summary": "Exchange an API key for a short-lived JWT",
                    "security": [],
                    "requestBody": body("TokenRequest"),
                    "responses": {
                        "200": reply(ref("Token"), "A bearer token."),
                        "400": reply(ERROR, "The body is not {api_key: string}."),
                        **errors(401, 429),
                    },
                }
            },
            "/api/media": {
                "post": {
                    "summary": "Upload an image, GIF or video to the media store; returns the "
                    "attachment record (sha256, type, size) a request names",
                    "requestBody": {
                        "required": True,
                        "content": {
                            **{
                                kind: {"schema": {"type": "string", "format": "binary"}}
                                for kind in (
                                    "image/jpeg",
                                    "image/png",
                                    "image/webp",
                                    "image/gif",
                                    "video/mp4",
                                )
                            },
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {"file": {"type": "string", "format": "binary"}},
                                }
                            },
                        },
                    },
                    "responses": {
                        "201": reply(ref("StoredMedia"), "Stored (or already stored)."),
                        **errors(400, 401, 403, 413, 415, 422, 429, 503, 507),
                    },
                }
            },
            "/api/requests": {
                "get": {
                    "summary": "List requests (pending by default)",
                    "parameters": list_params,
                    "responses": {
                        "200": reply(ref("RequestPage"), "One page."),
                        **errors(401, 403, 422),
                    },
                },
                "post": {
                    "summary": "Submit a write request for review",
                    "parameters": [IDEMPOTENCY],
                    "requestBody": body("NewRequest"),
                    "responses": {
                        "201": reply(ref("Created"), "Recorded as pending."),
                        "200": reply(ref("Created"), "Already known (same id)."),
                        **errors(401, 403, 413, 422),
                    },
                },
            },
            "/api/requests/{request_id}": {
                "parameters": [ID_PARAM],
                "get": {
                    "summary": "One request with warnings and history",
                    "responses": {
                        "200": reply(ref("RequestDetail"), "The request."),
                        **errors(401, 403, 404),
                    },
                },
                "patch": {
                    "summary": "Edit: a new revision, back to pending, approval void",
                    "requestBody": body("Edit"),
                    "responses": {
                        "200": reply(ref("Edited"), "The new revision."),
                        **errors(401, 403, 404, 409, 413, 422),
                    },
                },
            },
            "/api/requests/{request_id}/approve": {
                "parameters": [ID_PARAM],
                "post": {
                    "summary": "Approve (sign) the revision and content you reviewed; 409 if "
                    "the request changed since you read it",
                    "parameters": [IDEMPOTENCY],
                    "requestBody": body("Approve"),
                    "responses": {
                        "200": reply(ref("Approved"), "Approved, or first of two approvals."),
                        **errors(401, 403, 404, 409, 413, 422),
                    },
                },
            },
            "/api/spend": {
                "get": {
                    "summary": "X spend today and this month, caps and what is left, per account",
                    "responses": {
                        "200": reply(ref("Spend"), "Overall (scope total) and per account."),
                        **errors(401, 403),
                    },
                }
            },
            "/api/requests/{request_id}/reject": {
                "parameters": [ID_PARAM],
                "post": {
                    "summary": "Reject with a reason",
                    "parameters": [IDEMPOTENCY],
                    "requestBody": body("Reject"),
                    "responses": {
                        "200": reply(ref("Rejected"), "Rejected."),
                        **errors(401, 403, 404, 409, 413, 422),
                    },
                },
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi_json(request: Request) -> Response:
    """GET /openapi.json."""
    return JSONResponse(build_document())
