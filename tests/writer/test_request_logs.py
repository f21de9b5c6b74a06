"""One request's life in the JSON logs: every line about it names request_id, account, action.

The filter is what an operator runs: `jq 'select(.request_id == "…")'` over the JSON lines.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stamina
from redis.asyncio import Redis
from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.core.logging import configure_logging
from twitstack.writer.retry_hooks import writer_retry_hook
from twitstack.writes.models import ModerationStatus

S = ModerationStatus
pytestmark = pytest.mark.anyio


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("prod", "info", stream=stream)
    yield stream
    configure_logging("dev", "info")


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def about(stream: io.StringIO, request_id: str) -> list[dict[str, Any]]:
    """`jq 'select(.request_id == $id)'`."""
    return [line for line in lines(stream) if line.get("request_id") == request_id]


async def test_a_sent_and_a_failed_request_can_be_followed_by_id(
    make_settings: Callable[..., Settings],
    redis: Redis,
    sandbox: RunningSandbox,
    json_log: io.StringIO,
) -> None:
    """pending -> approved -> sending -> executed, and a duplicate that fails at warning."""
    settings = writer_settings(make_settings, sandbox.base_url)
    first = tweet("the life of one request")
    again = approved(tweet("the life of one request"))  # X refuses duplicate content
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(first)
        await writer.wait_states([first.id], {S.PENDING})
        # What moderation's approve does: sign, and move the ledger record (which pushes it).
        approval = approved(first).approval
        assert approval is not None
        moved = await writer.ledger.approve(first.id, approval, expected_revision=1, actor="alice")
        assert moved.ok
        await writer.wait_states([first.id], {S.EXECUTED})
        await writer.push(again)
        await writer.wait_states([again.id], {S.FAILED})
    life = about(json_log, first.id)
    states = [line["state"] for line in life if line["event"] == "writer.request_state_changed"]
    assert states[0] == "pending"
    assert states[-2:] == ["sending", "executed"]
    assert all(line["account"] == "default" and line["action"] == "tweet" for line in life)
    failed = [line for line in about(json_log, again.id) if line.get("state") == "failed"]
    assert [line["level"] for line in failed] == ["warning"]
    assert failed[0]["reason"] == "duplicate_content"


async def test_retries_name_the_request_and_the_real_error(
    make_settings: Callable[..., Settings],
    redis: Redis,
    sandbox: RunningSandbox,
    json_log: io.StringIO,
) -> None:
    """X unreachable: each retry line carries the request and the connect error's class."""
    with socket.socket() as probe:  # a port nothing listens on: every call is "not sent"
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = writer_settings(make_settings, closed, transient_attempts=3, transient_retry_s=0.05)
    request = approved(tweet("X is down"))
    saved = get_on_retry_hooks()
    stamina.set_testing(True, attempts=3)
    try:
        async with running_writer(settings, redis, sandbox) as writer:
            # as the supervisor installs it, counting in the writer's own registry
            set_on_retry_hooks([writer_retry_hook(writer.service.registry)])
            await writer.push(request)

            async def retried() -> bool:
                return len(_retries(json_log)) >= 2

            await wait_until(retried)
            assert await writer.state(request.id) is not S.EXECUTED
            # The series the outage alerts watch (deploy/prometheus/outages.yml).
            assert writer.metric("writer_x_failures_total", kind="network") >= 2
            assert writer.metric("writer_x_failures_total", kind="server_error") == 0
            assert writer.metric("writer_x_consecutive_failures") >= 2
            assert writer.metric("writer_x_last_answer_timestamp_seconds") == 0
            assert writer.metric("writer_retries_total", operation="post_tweet") >= 2
            zero = writer.service.registry.get_sample_value(
                "writer_retries_total", {"operation": "send_dm"}
            )
            assert zero == 0  # exists at 0 (None if the label set were missing)
    finally:
        set_on_retry_hooks(saved)
    retries = _retries(json_log)
    assert {line["request_id"] for line in retries} == {request.id}
    assert {(line["account"], line["action"]) for line in retries} == {("default", "tweet")}
    assert {line["error"] for line in retries} == {"ConnectError"}
    assert {line["operation"] for line in retries} == {"post_tweet"}
    assert {line["level"] for line in retries} == {"warning"}


def _retries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in lines(stream) if line["event"] == "writer.retry_scheduled"]


async def test_a_message_dead_lettered_unread_still_names_its_request(
    make_settings: Callable[..., Settings],
    redis: Redis,
    sandbox: RunningSandbox,
    json_log: io.StringIO,
) -> None:
    settings = writer_settings(make_settings, sandbox.base_url)
    raw = json.dumps({"id": "req-bad-1", "account": "default", "action": "tweet"}).encode()
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push_raw(raw)

        async def dead() -> bool:
            return bool(await writer.dead_letters())

        await wait_until(dead)
    [line] = [x for x in lines(json_log) if x["event"] == "writer.message_dead_lettered"]
    assert (line["request_id"], line["account"], line["action"]) == (
        "req-bad-1",
        "default",
        "tweet",
    )
    assert line["level"] == "warning"


async def test_an_answer_from_x_ends_the_run_of_failures(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    settings = writer_settings(make_settings, sandbox.base_url)
    request = approved(tweet("X is up"))
    async with running_writer(settings, redis, sandbox) as writer:
        writer.service.metrics.x_consecutive_failures.set(7)  # as left by an outage
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
        assert writer.metric("writer_x_consecutive_failures") == 0
        assert writer.metric("writer_x_last_answer_timestamp_seconds") > 0
        assert writer.metric("writer_x_failures_total", kind="timeout") == 0
