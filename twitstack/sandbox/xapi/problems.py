"""X's error bodies, verbatim where they were observed in the wild (research §3.2)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"
_PROBLEMS = "https://api.twitter.com/2/problems"  # X still uses the old host in `type` URIs

UNAUTHORIZED: dict[str, Any] = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
FORBIDDEN: dict[str, Any] = {
    "title": "Forbidden",
    "type": "about:blank",
    "status": 403,
    "detail": "Forbidden",
}
DUPLICATE_CONTENT: dict[str, Any] = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
REPLY_TARGET_MISSING: dict[str, Any] = {
    "detail": "You attempted to reply to a Tweet that is deleted or not visible to you.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
# X's answer (2025 on) to an API reply to someone who never mentioned or quoted the account.
REPLY_NOT_ENGAGED: dict[str, Any] = {
    "detail": "Reply to this conversation is not allowed because you have not been mentioned "
    "or otherwise engaged by the author of the post you are replying to.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
OAUTH1_PERMISSIONS: dict[str, Any] = {
    "title": "Forbidden",
    "status": 403,
    "detail": "Your client app is not configured with the appropriate oauth1 app permissions "
    "for this endpoint.",
    "type": f"{_PROBLEMS}/oauth1-permissions",
}
UNSUPPORTED_AUTHENTICATION: dict[str, Any] = {
    "title": "Unsupported Authentication",
    "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  "
    "Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
    "type": f"{_PROBLEMS}/unsupported-authentication",
    "status": 403,
}
TOO_MANY_REQUESTS: dict[str, Any] = {
    "title": "Too Many Requests",
    "detail": "Too Many Requests",
    "type": "about:blank",
    "status": 429,
}
USAGE_CAPPED: dict[str, Any] = {
    "title": "UsageCapExceeded",
    "detail": "Usage cap exceeded: Monthly product cap",
    "type": f"{_PROBLEMS}/usage-capped",
    "period": "Monthly",
    "scope": "Product",
}
CREDITS_DEPLETED: dict[str, Any] = {
    "title": "CreditsDepleted",
    "detail": "Your enrolled account does not have any credits",
    "type": "https://api.x.com/2/problems/credits",
}
_SERVER_ERRORS: dict[int, tuple[str, str]] = {
    500: ("Internal Server Error", "Internal Server Error"),
    502: ("Bad Gateway", "Bad Gateway"),
    503: ("Service Unavailable", "Service Unavailable"),
    504: ("Gateway Timeout", "Gateway Timeout"),
}
CDN_503_HTML = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
    "<center><h1>503 Service Temporarily Unavailable</h1></center></body></html>"
)
INVALID_REFRESH_TOKEN: dict[str, Any] = {
    "error": "invalid_request",
    "error_description": "Value passed for the token was invalid.",
}


def server_error(status: int) -> dict[str, Any]:
    """The problem body X sends with a 5xx status."""
    title, detail = _SERVER_ERRORS[status]
    return {"title": title, "detail": detail, "type": "about:blank", "status": status}


def dm_refused(participant_id: str) -> dict[str, Any]:
    """403 for a recipient who does not accept messages from the sender."""
    return {
        "detail": f"You are not permitted to send Direct Messages to user {participant_id}.",
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
    }


def invalid_request(problems: list[tuple[str, Any, str]]) -> dict[str, Any]:
    """400 invalid-request with one `errors` entry per (parameter, value, message)."""
    return {
        "errors": [
            {"parameters": {parameter: [value]}, "message": message}
            for parameter, value, message in problems
        ],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": f"{_PROBLEMS}/invalid-request",
    }


def resource_not_found(resource_type: str, parameter: str, value: str) -> dict[str, Any]:
    """The resource-not-found problem (a whole 404 body, or one entry of a 200's `errors`)."""
    return {
        "value": value,
        "detail": f"Could not find {resource_type} with {parameter}: [{value}].",
        "title": "Not Found Error",
        "resource_type": resource_type,
        "parameter": parameter,
        "resource_id": value,
        "type": f"{_PROBLEMS}/resource-not-found",
    }


def problem_response(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A problem body served as `application/problem+json`."""
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)
