"""A freshly started writer's /metrics shows 0 for every label set known in advance."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import running_writer, writer_settings
from twitstack.core.config import Settings
from twitstack.core.metrics import metrics_route

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
