"""The `components.schemas` of the OpenAPI document: every body the JSON API takes or returns."""

from __future__ import annotations

from typing import Any

from twitstack.moderation.openapi_fragments import NUMBER_OR_NULL
from twitstack.moderation.queries import ACTIONS
from twitstack.writes.models import ModerationStatus

_BUDGET_LINE = {
    "type": "object",
    "required": ["spent_usd", "cap_usd", "left_usd", "cap_raised", "unreadable"],
    "properties": {
        # null (and unreadable true) when the spend ledger cannot read this period's spend.
        "spent_usd": NUMBER_OR_NULL,
        "cap_usd": NUMBER_OR_NULL,
        "left_usd": NUMBER_OR_NULL,
        "cap_raised": {"type": "boolean"},
        "unreadable": {"type": "boolean"},
    },
}
SCHEMAS: dict[str, Any] = {
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
            "not_before": NUMBER_OR_NULL,
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
