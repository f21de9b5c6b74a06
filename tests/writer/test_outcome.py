"""Every row of the writer's decision table (research §5.2), using X's real bodies."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from twitstack.writer.outcome import AuthKind, Method, Outcome, OutcomeKind, classify

# Bodies quoted verbatim from research/xapi-twscrape.md §3.2.
DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
OAUTH1_PERMISSIONS = {
    "title": "Forbidden",
    "status": 403,
    "detail": "Your client app is not configured with the appropriate oauth1 app permissions for "
    "this endpoint.",
    "type": "https://api.twitter.com/2/problems/oauth1-permissions",
}
CLIENT_FORBIDDEN = {
    "client_id": "123",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and "
    "tokens from a Twitter developer App that is attached to a Project.",
    "registration_url": "https://developer.x.com/",
    "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access",
    "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}
RATE_LIMITED = {
    "title": "Too Many Requests",
    "detail": "Too Many Requests",
    "type": "about:blank",
    "status": 429,
}
LEGACY_RATE_LIMITED = {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}
USAGE_CAPPED = {
    "title": "UsageCapExceeded",
    "detail": "Usage cap exceeded: Monthly product cap",
    "type": "https://api.twitter.com/2/problems/usage-capped",
    "period": "Monthly",
    "scope": "Product",
}
CREDITS_402 = {
    "title": "Payment Required",
    "detail": "credits depleted",
    "status": 402,
    "type": "https://api.x.com/2/problems/credits-depleted",
}
CREDITS_402_ALT = {
    "title": "CreditsDepleted",
    "detail": "Your enrolled account does not have any credits",
    "type": "https://api.x.com/2/problems/credits",
}
OVERLOADED = {
    "title": "Service Unavailable",
    "detail": "Service Unavailable",
    "type": "about:blank",
    "status": 503,
}
INVALID_REQUEST = {
    "title": "Invalid Request",
    "detail": "One or more parameters to your request was invalid.",
    "type": "https://api.twitter.com/2/problems/invalid-request",
    "errors": [{"message": "text is too long", "parameters": {"text": ["x"]}}],
}
DM_REFUSED = {
    "title": "Forbidden",
    "detail": "You cannot send messages to this user.",
    "type": "about:blank",
    "status": 403,
}
NOT_FOUND = {
    "title": "Not Found Error",
    "detail": "Could not find tweet with id: [1].",
    "type": "https://api.twitter.com/2/problems/resource-not-found",
    "resource_type": "tweet",
}
CREATED = {"data": {"id": "1346889436626259968", "text": "hi", "edit_history_tweet_ids": ["1"]}}
DM_CREATED = {"data": {"dm_conversation_id": "1-2", "dm_event_id": "58"}}
RESET = {
    "x-rate-limit-limit": "100",
    "x-rate-limit-remaining": "0",
    "x-rate-limit-reset": "1700000900",
}
DAILY = {
    **RESET,
    "x-user-limit-24hour-limit": "1440",
    "x-user-limit-24hour-remaining": "0",
    "x-user-limit-24hour-reset": "1700050000",
}

Row = tuple[Method, int, dict[str, Any] | bytes, dict[str, str], AuthKind, OutcomeKind, str]

ROWS: list[Row] = [
    ("POST", 201, CREATED, {}, "oauth2", OutcomeKind.SUCCESS, "created"),
    ("POST", 201, DM_CREATED, {}, "oauth2", OutcomeKind.SUCCESS, "created"),
    ("DELETE", 200, {"data": {"deleted": True}}, {}, "oauth2", OutcomeKind.SUCCESS, "deleted"),
    ("POST", 400, INVALID_REQUEST, {}, "oauth2", OutcomeKind.PERMANENT, "invalid_request"),
    ("POST", 400, b"", {}, "oauth2", OutcomeKind.PERMANENT, "invalid_request"),
    ("POST", 401, UNAUTHORIZED, {}, "oauth2", OutcomeKind.AUTH_REFRESH, "unauthorized"),
    ("POST", 401, UNAUTHORIZED, {}, "oauth1", OutcomeKind.AUTH_FATAL, "unauthorized"),
    ("POST", 403, DUPLICATE, {}, "oauth2", OutcomeKind.PERMANENT, "duplicate_content"),
    ("POST", 403, OAUTH1_PERMISSIONS, {}, "oauth1", OutcomeKind.CONFIG_FATAL, "oauth1_permissions"),
    ("POST", 403, CLIENT_FORBIDDEN, {}, "oauth2", OutcomeKind.CONFIG_FATAL, "client_forbidden"),
    ("POST", 403, DM_REFUSED, {}, "oauth2", OutcomeKind.PERMANENT, "forbidden"),
    ("DELETE", 404, NOT_FOUND, {}, "oauth2", OutcomeKind.ALREADY_GONE, "not_found"),
    ("POST", 404, NOT_FOUND, {}, "oauth2", OutcomeKind.PERMANENT, "resource_not_found"),
    (
        "DELETE",
        200,
        {"data": {"deleted": False}},
        {},
        "oauth2",
        OutcomeKind.NEEDS_REVIEW,
        "not_deleted",
    ),
    ("POST", 429, RATE_LIMITED, RESET, "oauth2", OutcomeKind.WAIT_UNTIL, "rate_limited"),
    ("POST", 429, LEGACY_RATE_LIMITED, RESET, "oauth2", OutcomeKind.WAIT_UNTIL, "rate_limited"),
    ("POST", 429, RATE_LIMITED, DAILY, "oauth2", OutcomeKind.WAIT_UNTIL, "daily_limit"),
    ("POST", 429, USAGE_CAPPED, RESET, "oauth2", OutcomeKind.ACCOUNT_PAUSED, "usage_capped"),
    ("POST", 402, CREDITS_402, {}, "oauth2", OutcomeKind.ACCOUNT_PAUSED, "credits_depleted"),
    ("POST", 402, CREDITS_402_ALT, {}, "oauth2", OutcomeKind.ACCOUNT_PAUSED, "credits_depleted"),
    ("POST", 503, OVERLOADED, {}, "oauth2", OutcomeKind.AMBIGUOUS, "http_503"),
    ("POST", 500, b"<html>oops</html>", {}, "oauth2", OutcomeKind.AMBIGUOUS, "http_500"),
    ("POST", 502, b"", {}, "oauth2", OutcomeKind.AMBIGUOUS, "http_502"),
    ("DELETE", 503, OVERLOADED, {}, "oauth2", OutcomeKind.TRANSIENT_RETRY, "http_503"),
    ("GET", 504, b"<html>gateway</html>", {}, "oauth2", OutcomeKind.TRANSIENT_RETRY, "http_504"),
    ("POST", 201, {"data": {}}, {}, "oauth2", OutcomeKind.AMBIGUOUS, "success_without_id"),
    (
        "POST",
        200,
        {"errors": [{"message": "partial"}]},
        {},
        "oauth2",
        OutcomeKind.AMBIGUOUS,
        "success_without_id",
    ),
]


@pytest.mark.parametrize(("method", "status", "body", "headers", "auth", "kind", "reason"), ROWS)
def test_classifies_response(
    method: Method,
    status: int,
    body: dict[str, Any] | bytes,
    headers: dict[str, str],
    auth: AuthKind,
    kind: OutcomeKind,
    reason: str,
) -> None:
    """Each documented response maps to its table row, whether the body is bytes or JSON."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    for given in (raw, body):
        outcome = classify(method=method, status=status, headers=headers, body=given, auth=auth)
        assert (outcome.kind, outcome.reason, outcome.status) == (kind, reason, status)


def test_permanent_failure_keeps_x_detail() -> None:
    """A permanent rejection carries X's `detail` for the moderation UI."""
    outcome = classify(method="POST", status=403, body=DM_REFUSED)
    assert outcome.detail == "You cannot send messages to this user."
    assert classify(method="POST", status=403, body=DUPLICATE).is_duplicate


def test_success_carries_the_created_id() -> None:
    """A 201 tweet or DM yields the id the ledger persists."""
    assert classify(method="POST", status=201, body=CREATED).result_id == "1346889436626259968"
    assert classify(method="POST", status=201, body=DM_CREATED).result_id == "58"


def test_rate_limit_waits_until_window_reset() -> None:
    """A window 429 waits until x-rate-limit-reset; a daily 429 until the 24-hour reset."""
    assert (
        classify(method="POST", status=429, headers=RESET, body=RATE_LIMITED).retry_at == 1700000900
    )
    daily = classify(method="POST", status=429, headers=DAILY, body=RATE_LIMITED)
    assert daily.retry_at == 1700050000
    missing = classify(method="POST", status=429, headers={}, body=RATE_LIMITED)
    assert missing.kind is OutcomeKind.WAIT_UNTIL
    assert missing.retry_at is None


def test_headers_are_case_insensitive() -> None:
    """Reset headers are found whatever their case."""
    headers = {"X-Rate-Limit-Reset": "1700000901"}
    assert classify(method="POST", status=429, headers=headers, body=b"").retry_at == 1700000901


EXCEPTIONS: list[tuple[BaseException, Method, OutcomeKind, str]] = [
    (httpx.ConnectError("refused"), "POST", OutcomeKind.TRANSIENT_RETRY, "not_sent"),
    (httpx.ConnectTimeout("slow"), "POST", OutcomeKind.TRANSIENT_RETRY, "not_sent"),
    (httpx.PoolTimeout("pool"), "POST", OutcomeKind.TRANSIENT_RETRY, "not_sent"),
    (httpx.ReadTimeout("slow"), "POST", OutcomeKind.AMBIGUOUS, "timeout"),
    (httpx.WriteTimeout("slow"), "POST", OutcomeKind.AMBIGUOUS, "timeout"),
    (httpx.ReadError("reset by peer"), "POST", OutcomeKind.AMBIGUOUS, "network_error"),
    (httpx.RemoteProtocolError("closed"), "POST", OutcomeKind.AMBIGUOUS, "network_error"),
    (httpx.ReadTimeout("slow"), "DELETE", OutcomeKind.TRANSIENT_RETRY, "network_error"),
    (httpx.ReadError("reset"), "GET", OutcomeKind.TRANSIENT_RETRY, "network_error"),
    (httpx.ConnectError("refused"), "DELETE", OutcomeKind.TRANSIENT_RETRY, "not_sent"),
]


@pytest.mark.parametrize(("exc", "method", "kind", "reason"), EXCEPTIONS)
def test_classifies_exception(
    exc: BaseException, method: Method, kind: OutcomeKind, reason: str
) -> None:
    """A POST that may have reached X is ambiguous; unsent or idempotent calls are retryable."""
    outcome: Outcome = classify(method=method, exception=exc)
    assert (outcome.kind, outcome.reason) == (kind, reason)


def test_needs_status_or_exception() -> None:
    """Calling without a status or an exception is a programming error."""
    with pytest.raises(ValueError, match="status or an exception"):
        classify(method="POST")
