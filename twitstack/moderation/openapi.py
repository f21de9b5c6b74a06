"""The hand-written OpenAPI 3.1 document of the JSON API, served at /openapi.json."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from twitstack import __version__
from twitstack.moderation.pagination import MAX_PAGE_SIZE
from twitstack.moderation.queries import ACTIONS, AGES, SORTS
from twitstack.writes.models import ModerationStatus

_ERROR = {"$ref": "#/components/schemas/Error"}
_NUMBER_OR_NULL = {"type": ["number", "null"]}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed body: broken multipart, or too many parts.",
        401: "Missing, invalid, expired or revoked bearer token.",
        403: "The caller's role or the token's scopes do not allow this.",
        404: "No such request.",
        409: "The request is not in a state that allows this, or was edited meanwhile.",
        413: "Body too large.",
        422: "Invalid input; `detail` says what was expected and what was found.",
        429: "Too many failed attempts (see Retry-After), or the daily upload budget is spent.",
        415: "Not a JPEG, PNG, WebP, GIF or MP4 (read from the bytes), or not the declared type.",
        503: "The media store is unavailable; try again.",
        507: "The server's disk is below its free-space floor ([media] min_free_mb).",
    }
    return {str(code): _json(_ERROR, text[code]) for code in codes}


_ID_PARAM = {
    "name": "request_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "Retries with the same key return the first response instead of redoing it.",
}
_BUDGET_LINE = {
    "type": "object",
    "required": ["spent_usd", "cap_usd", "left_usd", "cap_raised"],
    "properties": {
        "spent_usd": {"type": "number"},
        "cap_usd": _NUMBER_OR_NULL,
        "left_usd": _NUMBER_OR_NULL,
        "cap_raised": {"type": "boolean"},
    },
}
_SCHEMAS: dict[str, Any] = {
    "Spend": {
        "type": "object",
        "required": ["prices_as_of", "scopes"],
        "properties": {
            "prices_as_of": {"type": "string"},
            "scopes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["scope", "held_for_budget", "day", "month", "month_by_action_usd"],
                    "properties": {
                        "scope": {"type": "string"},
                        "held_for_budget": {"type": "boolean"},
                        "day": _BUDGET_LINE,
                        "month": _BUDGET_LINE,
                        "month_by_action_usd": {
                            "type": "object",
                            "additionalProperties": {"type": "number"},
                        },
                    },
                },
            },
        },
    },
    "Error": {
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"type": "string"}, "field": {"type": "string"}},
    },
    "RequestSummary": {
        "type": "object",
        "required": ["id", "action", "account", "state", "text", "revision", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "action": {"type": "string", "enum": list(ACTIONS)},
            "account": {"type": "string"},
            "author": {"type": ["string", "null"]},
            "state": {"type": "string", "enum": [s.value for s in ModerationStatus]},
            "text": {"type": "string"},
            "revision": {"type": "integer", "minimum": 1},
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "refusal": {
                "type": ["string", "null"],
                "description": "Why X would refuse this draft (the scraper's source.refusal).",
            },
        },
    },
    "RequestPage": {
        "type": "object",
        "required": ["items", "total", "page", "size", "pages"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/RequestSummary"}},
            "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1},
            "size": {"type": "integer", "minimum": 1},
            "pages": {"type": "integer", "minimum": 1},
        },
    },
    "RequestDetail": {
        "type": "object",
        "required": ["id", "action", "account", "state", "revision", "payload", "events"],
        "properties": {
            "id": {"type": "string"},
            "action": {"type": "string", "enum": list(ACTIONS)},
            "account": {"type": "string"},
            "author": {"type": ["string", "null"]},
            "state": {"type": "string", "enum": [s.value for s in ModerationStatus]},
            "revision": {"type": "integer", "minimum": 1},
            "content_hash": {
                "type": ["string", "null"],
                "description": "What an approval of this revision binds to: send it back "
                "(null for callers who may not read the DM it hashes).",
            },
            "payload": {"type": "object"},
            "source": {"type": ["object", "null"]},
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "not_before": _NUMBER_OR_NULL,
            "approved": {"type": "boolean"},
            "weighted_length": {"type": ["integer", "null"]},
            "warnings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "message", "level"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "level": {"type": "string", "enum": ["block", "warn", "info"]},
                    },
                },
            },
            "result": {"type": ["object", "null"]},
            "last_reason": {"type": "string"},
            "parts": {
                "type": ["array", "null"],
                "description": "A thread's parts in order (null for other actions).",
                "items": {
                    "type": "object",
                    "properties": {
                        "part": {"type": "integer", "minimum": 1},
                        "text": {"type": "string"},
                        "weighted_length": {"type": "integer"},
                        "max_length": {"type": "integer"},
                        "poll": {"type": ["object", "null"]},
                        "quote_tweet_id": {"type": ["string", "null"]},
                    },
                },
            },
            "live_parts": {
                "type": ["array", "null"],
                "description": "A thread's parts X has, with links: all once executed, the "
                "ones posted before a permanent refusal when failed (null for other actions).",
                "items": {
                    "type": "object",
                    "properties": {
                        "part": {"type": "integer", "minimum": 1},
                        "tweet_id": {"type": "string"},
                        "url": {"type": "string"},
                    },
                },
            },
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["to", "actor", "reason", "at", "revision"],
                    "properties": {
                        "from": {"type": ["string", "null"]},
                        "to": {"type": "string"},
                        "actor": {"type": "string"},
                        "reason": {"type": "string"},
                        "at": {"type": "number"},
                        "revision": {"type": "integer"},
                    },
                },
            },
        },
    },
    "NewRequest": {
        "description": "The write_queue message format (see writes.models.WriteRequest).",
        "type": "object",
        "required": ["action", "payload"],
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
            "action": {"type": "string", "enum": list(ACTIONS)},
            "payload": {"type": "object"},
            "account": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
            "not_before": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"},
            "source": {"type": "object"},
        },
    },
    "StoredMedia": {
        "type": "object",
        "required": ["sha256", "type", "size"],
        "properties": {
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "type": {"type": "string"},
            "size": {"type": "integer"},
        },
    },
    "Created": {
        "type": "object",
        "required": ["id", "state", "revision", "created"],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string"},
            "revision": {"type": "integer"},
            "created": {"type": "boolean"},
        },
    },
    "Edit": {
        "type": "object",
        "required": ["revision", "payload"],
        "properties": {
            "revision": {"type": "integer", "minimum": 1},
            "payload": {"type": "object"},
        },
    },
    "Edited": {
        "type": "object",
        "required": ["id", "state", "revision"],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string"},
            "revision": {"type": "integer"},
        },
    },
    "Approve": {
        "type": "object",
        "required": ["revision", "content_hash"],
        "properties": {
            "revision": {"type": "integer", "minimum": 1},
            "content_hash": {"type": "string", "minLength": 1},
        },
    },
    "Approved": {
        "type": "object",
        "required": ["id", "approved", "approvers", "needed"],
        "properties": {
            "id": {"type": "string"},
            "approved": {"type": "boolean"},
            "approvers": {"type": "array", "items": {"type": "string"}},
            "needed": {"type": "integer"},
        },
    },
    "Reject": {
        "type": "object",
        "required": ["reason"],
        "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 1000}},
    },
    "Rejected": {
        "type": "object",
        "required": ["id", "state"],
        "properties": {"id": {"type": "string"}, "state": {"type": "string"}},
    },
    "TokenRequest": {
        "type": "object",
        "required": ["api_key"],
        "properties": {"api_key": {"type": "string"}},
    },
    "Token": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"type": "string", "enum": ["bearer"]},
            "expires_in": {"type": "integer"},
        },
    },
}


def _body(ref: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


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
                    "requestBody": _body("TokenRequest"),
                    "responses": {
                        "200": _json(_ref("Token"), "A bearer token."),
                        "400": _json(_ERROR, "The body is not {api_key: string}."),
                        **_errors(401, 429),
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
                        "201": _json(_ref("StoredMedia"), "Stored (or already stored)."),
                        **_errors(400, 401, 403, 413, 415, 422, 429, 503, 507),
                    },
                }
            },
            "/api/requests": {
                "get": {
                    "summary": "List requests (pending by default)",
                    "parameters": list_params,
                    "responses": {
                        "200": _json(_ref("RequestPage"), "One page."),
                        **_errors(401, 403, 422),
                    },
                },
                "post": {
                    "summary": "Submit a write request for review",
                    "parameters": [_IDEMPOTENCY],
                    "requestBody": _body("NewRequest"),
                    "responses": {
                        "201": _json(_ref("Created"), "Recorded as pending."),
                        "200": _json(_ref("Created"), "Already known (same id)."),
                        **_errors(401, 403, 413, 422),
                    },
                },
            },
            "/api/requests/{request_id}": {
                "parameters": [_ID_PARAM],
                "get": {
                    "summary": "One request with warnings and history",
                    "responses": {
                        "200": _json(_ref("RequestDetail"), "The request."),
                        **_errors(401, 403, 404),
                    },
                },
                "patch": {
                    "summary": "Edit: a new revision, back to pending, approval void",
                    "requestBody": _body("Edit"),
                    "responses": {
                        "200": _json(_ref("Edited"), "The new revision."),
                        **_errors(401, 403, 404, 409, 413, 422),
                    },
                },
            },
            "/api/requests/{request_id}/approve": {
                "parameters": [_ID_PARAM],
                "post": {
                    "summary": "Approve (sign) the revision and content you reviewed; 409 if "
                    "the request changed since you read it",
                    "parameters": [_IDEMPOTENCY],
                    "requestBody": _body("Approve"),
                    "responses": {
                        "200": _json(_ref("Approved"), "Approved, or first of two approvals."),
                        **_errors(401, 403, 404, 409, 413, 422),
                    },
                },
            },
            "/api/spend": {
                "get": {
                    "summary": "X spend today and this month, caps and what is left, per account",
                    "responses": {
                        "200": _json(_ref("Spend"), "Overall (scope total) and per account."),
                        **_errors(401, 403),
                    },
                }
            },
            "/api/requests/{request_id}/reject": {
                "parameters": [_ID_PARAM],
                "post": {
                    "summary": "Reject with a reason",
                    "parameters": [_IDEMPOTENCY],
                    "requestBody": _body("Reject"),
                    "responses": {
                        "200": _json(_ref("Rejected"), "Rejected."),
                        **_errors(401, 403, 404, 409, 413, 422),
                    },
                },
            },
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi_json(request: Request) -> Response:
    """GET /openapi.json."""
    return JSONResponse(build_document())
