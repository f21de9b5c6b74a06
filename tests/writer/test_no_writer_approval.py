"""Requests are visible without a writer: moderation records what waits on write_queue.

No writer runs: a request is enqueued, moderation's queue watch records it as pending, a
moderator approves it through the API. Then a writer starts: the request is executed once, and
the ledger holds one record for it (the writer's intake finds moderation's record).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from redis.asyncio import Redis

from tests.moderation.harness import open_harness
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import running_writer, tweet, wait_until, writer_settings
from tests.writer.test_request_logs import about, json_log
from twitstack.core.config import Settings
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.queue_watch import ACTOR, oldest_approved_age_s, record_waiting
from twitstack.moderation.roles import Role
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writes import keys
from twitstack.writes.events import read_events_range
from twitstack.writes.models import ModerationStatus, utcnow
from twitstack.writes.signing import public_key_to_base64
from twitstack.writes.waiting import WaitingRecorder
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
pytestmark = pytest.mark.anyio
__all__ = ["json_log"]  # the fixture, shared with test_request_logs


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """The fake's clock follows the wall clock, like the moderation harness's approvals."""
    return XApiSandboxConfig()


async def test_approve_while_no_writer_runs_then_executed_once(
    make_settings: Callable[..., Settings],
    redis: Redis,
    redis_url: str,
    sandbox: RunningSandbox,
    tmp_path: Path,
    json_log: io.StringIO,
) -> None:
    request = tweet("approved while every writer was down", author="bot")
    await redis.rpush(keys.WRITE_QUEUE, encode_write_request(request))
    passwords = PasswordService(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    async with open_harness(redis_url, tmp_path, passwords) as mod:
        await mod.add_user("mo", Role.MODERATOR)
        token = await mod.bearer("mo")
        auth = {"authorization": f"Bearer {token}"}
        async with mod.client() as client:
            before = await client.get(f"/api/requests/{request.id}", headers=auth)
            assert before.status_code == 404  # what the issue saw: nobody had recorded it
            recorder = WaitingRecorder(mod.redis, mod.deps.decisions.ledger, actor=ACTOR)
            assert await record_waiting(recorder, mod.deps.history) == 1
            assert await record_waiting(recorder, mod.deps.history) == 0  # once
            seen = {"revision": 1, "content_hash": await mod.content_hash(request.id)}
            approved = await client.post(
                f"/api/requests/{request.id}/approve", json=seen, headers=auth
            )
            assert approved.status_code == 200, approved.text
        # No writer runs: the approved request ages where moderation sees it (the series
        # TwitstackApprovedNotExecuted watches); 31 minutes on, it is past the alert's 30.
        ledger = mod.deps.decisions.ledger
        assert await oldest_approved_age_s(mod.redis, ledger, utcnow()) < 60
        later = utcnow() + timedelta(minutes=31)
        assert await oldest_approved_age_s(mod.redis, ledger, later) > 30 * 60
        public_key = mod.deps.signer.public_key
    assert await redis.llen(keys.WRITE_QUEUE) == 2  # the pending original and the approved copy
    trusted = public_key if isinstance(public_key, str) else public_key_to_base64(public_key)
    settings = writer_settings(make_settings, sandbox.base_url, approval_public_keys=[trusted])
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.wait_states([request.id], {S.EXECUTED})

        async def drained() -> bool:
            return await redis.llen(keys.WRITE_QUEUE) == 0

        await wait_until(drained)
        record = await writer.record(request.id)
        assert writer.metric("writer_actions_processed_total", action="tweet") == 1
    assert sandbox.state.content.post_text_counts() == {request.payload["text"]: 1}
    assert record.result is not None
    # One record, created once (by moderation); the rest of its life is moves of that record.
    events = [e for e in await read_events_range(redis, count=1000) if e.request_id == request.id]
    created = [e for e in events if e.from_state is None]
    assert [(e.actor, e.to_state) for e in created] == [(ACTOR, S.PENDING)]
    assert [e.to_state for e in events] == [S.PENDING, S.APPROVED, S.SENDING, S.EXECUTED]
    stored = {key async for key in redis.scan_iter(match=f"writes:request:{request.id}*")}
    assert stored == {keys.request(request.id).encode()}
    # The same life in the JSON logs, found by its id alone (jq 'select(.request_id == ...)').
    life = [(x["event"], x.get("state")) for x in about(json_log, request.id)]
    assert life == [
        ("moderation.request_recorded", None),
        ("moderation.request_approved", None),
        ("writer.request_state_changed", "sending"),
        ("writer.request_state_changed", "executed"),
    ]
