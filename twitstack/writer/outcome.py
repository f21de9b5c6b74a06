"""The one pure function deciding what an X API response (or failure) means for a request."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

Method = Literal["GET", "POST", "DELETE"]
AuthKind = Literal["oauth2", "oauth1"]


class OutcomeKind(enum.StrEnum):
    """What the writer does next; research/xapi-twscrape.md §5.2 is the spec."""

    SUCCESS = "success"
    PERMANENT = "permanent"  # failed with X's detail; never retried
    AUTH_REFRESH = "auth_refresh"  # OAuth2 401: refresh once, then retry once
    AUTH_FATAL = "auth_fatal"  # OAuth1 401: nothing to refresh; operator must act
    CONFIG_FATAL = "config_fatal"  # app permissions/enrolment/scopes: pause the account
    WAIT_UNTIL = "wait_until"  # rate limited, not sent: reschedule after retry_at
    ACCOUNT_PAUSED = "account_paused"  # usage cap / credits: pause the account, alert
    TRANSIENT_RETRY = "transient_retry"  # definitely not sent, or idempotent: retry
    AMBIGUOUS = "ambiguous"  # a POST that may have happened: unknown, reconcile
    ALREADY_GONE = "already_gone"  # DELETE of a missing tweet: done, flagged
    NEEDS_REVIEW = "needs_review"  # X answered but declined in a way a human must judge


@dataclass(frozen=True, slots=True)
class Outcome:
    """The classification of one attempt: kind, a machine reason, and what X said."""

    kind: OutcomeKind
    reason: str
    status: int | None = None
    detail: str | None = None
    result_id: str | None = None  # tweet id, dm_event_id, or the deleted tweet id
    retry_at: float | None = None  # epoch seconds from X's reset headers (WAIT_UNTIL)

    @property
    def is_duplicate(self) -> bool:
        """True for X's 403 duplicate-content rejection."""
        return self.reason == "duplicate_content"


# Exceptions raised before any byte of the request could reach X.
_NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)
_CONFIG_403_TYPES = (
    "oauth1-permissions",
    "client-forbidden",
    "unsupported-authentication",
    "not-authorized-for-resource",
)


def _problem(body: bytes | Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Decode X's problem/JSON body; CDN HTML or garbage decodes to an empty mapping."""
    if body is None:
        return {}
    if isinstance(body, Mapping):
        return body
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _type_suffix(problem: Mapping[str, Any]) -> str:
    # api.twitter.com and api.x.com both appear in problem type URIs: match the path suffix.
    value = problem.get("type")
    if not isinstance(value, str) or value == "about:blank":
        return ""
    return value.rsplit("/", 1)[-1]


def _detail(problem: Mapping[str, Any]) -> str | None:
    for key in ("detail", "title"):
        value = problem.get(key)
        if isinstance(value, str) and value:
            return value
    errors = problem.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        message = errors[0].get("message") or errors[0].get("detail")
        if isinstance(message, str):
            return message
    return None


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _classify_exception(exc: BaseException, method: Method) -> Outcome:
    name = type(exc).__name__
    if isinstance(exc, _NOT_SENT_ERRORS):
        return Outcome(OutcomeKind.TRANSIENT_RETRY, "not_sent", detail=name)
    if method != "POST":
        return Outcome(OutcomeKind.TRANSIENT_RETRY, "network_error", detail=name)
    # A read/write timeout, reset or protocol error after sending may follow X's commit.
    reason = "timeout" if isinstance(exc, httpx.TimeoutException) else "network_error"
    return Outcome(OutcomeKind.AMBIGUOUS, reason, detail=name)


def _classify_success(status: int, problem: Mapping[str, Any], method: Method) -> Outcome:
    data = problem.get("data")
    data = data if isinstance(data, dict) else {}
    if method == "DELETE":
        if data.get("deleted") is True:
            return Outcome(OutcomeKind.SUCCESS, "deleted", status=status)
        return Outcome(
            OutcomeKind.NEEDS_REVIEW,
            "not_deleted",
            status=status,
            detail=_detail(problem) or "X answered deleted:false",
        )
    result_id = data.get("id") or data.get("dm_event_id")
    if method == "POST":
        if isinstance(result_id, str) and result_id:
            return Outcome(OutcomeKind.SUCCESS, "created", status=status, result_id=result_id)
        # A 2xx without an id may still have created the object: find out before re-sending.
        return Outcome(OutcomeKind.AMBIGUOUS, "success_without_id", status=status)
    return Outcome(OutcomeKind.SUCCESS, "ok", status=status)


def _classify_429(status: int, problem: Mapping[str, Any], headers: dict[str, str]) -> Outcome:
    detail = _detail(problem)
    if _type_suffix(problem) == "usage-capped" or problem.get("title") == "UsageCapExceeded":
        return Outcome(OutcomeKind.ACCOUNT_PAUSED, "usage_capped", status=status, detail=detail)
    if _header_float(headers, "x-user-limit-24hour-remaining") == 0:
        reset = _header_float(headers, "x-user-limit-24hour-reset")
        return Outcome(
            OutcomeKind.WAIT_UNTIL, "daily_limit", status=status, detail=detail, retry_at=reset
        )
    reset = _header_float(headers, "x-rate-limit-reset")
    return Outcome(
        OutcomeKind.WAIT_UNTIL, "rate_limited", status=status, detail=detail, retry_at=reset
    )


def _classify_403(status: int, problem: Mapping[str, Any]) -> Outcome:
    detail = _detail(problem)
    text = (detail or "").lower()
    if "duplicate content" in text:
        return Outcome(OutcomeKind.PERMANENT, "duplicate_content", status=status, detail=detail)
    suffix = _type_suffix(problem)
    if suffix in _CONFIG_403_TYPES or "scope" in text or "oauth1 app permissions" in text:
        reason = suffix.replace("-", "_") or "forbidden_config"
        return Outcome(OutcomeKind.CONFIG_FATAL, reason, status=status, detail=detail)
    return Outcome(OutcomeKind.PERMANENT, "forbidden", status=status, detail=detail)


def classify(
    *,
    method: Method,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | Mapping[str, Any] | None = None,
    exception: BaseException | None = None,
    auth: AuthKind = "oauth2",
) -> Outcome:
    """Classify one attempt from its response (status, headers, body) or its exception."""
    if exception is not None:
        return _classify_exception(exception, method)
    if status is None:
        raise ValueError("classify() needs a status or an exception")
    hdrs = _lower(headers or {})
    problem = _problem(body)
    detail = _detail(problem)
    if 200 <= status < 300:
        return _classify_success(status, problem, method)
    if status == 401:
        if auth == "oauth2":
            return Outcome(OutcomeKind.AUTH_REFRESH, "unauthorized", status=status, detail=detail)
        return Outcome(OutcomeKind.AUTH_FATAL, "unauthorized", status=status, detail=detail)
    if status == 402:
        return Outcome(OutcomeKind.ACCOUNT_PAUSED, "credits_depleted", status=status, detail=detail)
    if status == 403:
        return _classify_403(status, problem)
    if status == 404 and method == "DELETE":
        return Outcome(OutcomeKind.ALREADY_GONE, "not_found", status=status, detail=detail)
    if status == 429:
        return _classify_429(status, problem, hdrs)
    if 400 <= status < 500:
        fallback = "invalid_request" if status == 400 else f"http_{status}"
        reason = _type_suffix(problem).replace("-", "_") or fallback
        return Outcome(OutcomeKind.PERMANENT, reason, status=status, detail=detail)
    if method == "POST":
        return Outcome(OutcomeKind.AMBIGUOUS, f"http_{status}", status=status, detail=detail)
    return Outcome(OutcomeKind.TRANSIENT_RETRY, f"http_{status}", status=status, detail=detail)
