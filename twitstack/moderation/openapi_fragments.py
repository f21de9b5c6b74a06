"""Building blocks the OpenAPI document repeats: replies, error replies, parameters, refs."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
NUMBER_OR_NULL = {"type": ["number", "null"]}


def reply(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*codes: int) -> dict[str, Any]:
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
    return {str(code): reply(ERROR, text[code]) for code in codes}


ID_PARAM = {
    "name": "request_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
}
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "Retries with the same key return the first response instead of redoing it.",
}


def body(ref: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}
