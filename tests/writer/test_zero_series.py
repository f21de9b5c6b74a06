"""A freshly started writer's /metrics shows 0 for every label set known in advance."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import running_writer, writer_settings
from twitstack.core.config import Settings
from twitstack.core.metrics import metrics_route
from twitstack.writer.outcome import classify
from twitstack.writer.zero_series import KNOWN_OUTCOMES

pytestmark = pytest.mark.anyio

# Each line must be in the exposition of a writer that has handled nothing yet.
AT_ZERO = [
    'writer_actions_processed_total{action="tweet"} 0.0',
    'writer_actions_processed_total{action="dm"} 0.0',
    'writer_actions_processed_total{action="delete"} 0.0',
    'writer_request_duration_seconds_count{action="dm"} 0.0',
    'writer_dead_letters_total{reason="crashed_consumer"} 0.0',
    'writer_dead_letters_total{reason="handler_error"} 0.0',
    'writer_reconciliations_total{result="found"} 0.0',
    'writer_group_commit_calls_total{step="begin"} 0.0',
    'writer_group_commit_jobs_total{step="settle"} 0.0',
    'writer_reconciliations_total{result="needs_review"} 0.0',
    'writer_security_events_total{reason="bad_signature"} 0.0',
    'writer_security_events_total{reason="spent"} 0.0',
    'writer_security_events_total{reason="no_approval_keys_configured"} 0.0',
    'writer_account_paused{account="default"} 0.0',
    'writer_token_refreshes_total{account="default"} 0.0',
    'writer_x_failures_total{kind="server_error"} 0.0',
    'writer_x_failures_total{kind="timeout"} 0.0',
    'writer_x_failures_total{kind="network"} 0.0',
    "writer_x_consecutive_failures 0.0",
    'writer_outcomes_total{action="tweet",kind="success",reason="created"} 0.0',
    'writer_outcomes_total{action="delete",kind="success",reason="deleted"} 0.0',
    'writer_outcomes_total{action="dm",kind="permanent",reason="forbidden"} 0.0',
    'writer_outcomes_total{action="tweet",kind="wait_until",reason="rate_limited"} 0.0',
    'writer_outcomes_total{action="tweet",kind="account_paused",reason="usage_capped"} 0.0',
    # Not yet told by X: -1, which neither reads as exhausted (0) nor shows "No data".
    'writer_rate_limit_remaining{account="default",endpoint="tweets.create"} -1.0',
    'writer_rate_limit_remaining{account="default",endpoint="dm.create"} -1.0',
    'writer_rate_limit_remaining{account="default",endpoint="tweets.delete"} -1.0',
]


async def test_fresh_writer_exports_known_label_sets_at_zero(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    settings = writer_settings(make_settings, sandbox.base_url)
    async with running_writer(settings, redis, sandbox) as writer:
        # The route the supervisor serves on the writer's metrics port.
        app = Starlette(routes=[metrics_route(writer.service.registry)])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://writer") as client:
            text = (await client.get("/metrics")).text
    missing = [line for line in AT_ZERO if line not in text.splitlines()]
    assert missing == []


def test_every_outcome_classify_gives_regardless_of_x_is_at_zero() -> None:
    """The fixed (kind, reason) pairs classify() returns per method are the ones at zero.

    Reasons named after X's status (`http_404`) or problem type appear at their first use.
    """
    gives: dict[str, set[tuple[str, str]]] = {"POST": set(), "DELETE": set()}
    bodies: list[dict[str, Any]] = [
        {},
        {"data": {"id": "1"}},
        {"data": {"deleted": True}},
        {"data": {"deleted": False}},
        {"detail": "You are not allowed to create a Tweet with duplicate content."},
        {"title": "UsageCapExceeded"},
    ]
    headers: list[dict[str, str]] = [{}, {"x-user-limit-24hour-remaining": "0"}]
    for method in ("POST", "DELETE"):
        for status in (200, 201, 400, 401, 402, 403, 404, 429):
            for body in bodies:
                for header in headers:
                    for auth in ("oauth2", "oauth1"):
                        outcome = classify(
                            method=method, status=status, headers=header,
                            body=json.dumps(body).encode(), auth=auth,
                        )  # fmt: skip
                        gives[method].add((str(outcome.kind), outcome.reason))
        for error in (
            httpx.ConnectError("x"),
            httpx.ReadTimeout("x"),
            httpx.RemoteProtocolError("x"),
        ):
            outcome = classify(method=method, exception=error)
            gives[method].add((str(outcome.kind), outcome.reason))
    for method, pairs in gives.items():
        pairs = {(kind, reason) for kind, reason in pairs if not reason.startswith("http_")}
        assert pairs <= set(KNOWN_OUTCOMES[method]), method
        assert set(KNOWN_OUTCOMES[method]) <= pairs, method  # no pair that classify never gives
