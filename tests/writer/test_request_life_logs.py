"""One request's whole life in the JSON logs, found by its id alone, across the three doors.

`twitstack enqueue` pushes it; moderation's queue watch records it; a moderator edits and
approves it through the API; a writer executes it. The captured JSON lines are filtered the
way an operator filters them (`jq 'select(.request_id == $id)'`): every step is there, in
order, each naming the request's account and action.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from argon2 import PasswordHasher
from redis.asyncio import Redis

from tests.moderation.harness import open_harness
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import running_writer, writer_settings
from tests.writer.test_request_logs import about, json_log
from twitstack.core.config import Settings
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.queue_watch import ACTOR, record_waiting
from twitstack.moderation.roles import Role
from twitstack.ops.commands import add_commands
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus
from twitstack.writes.signing import public_key_to_base64
from twitstack.writes.waiting import WaitingRecorder
from twitstack.writes.wire import decode_write_request

pytestmark = pytest.mark.anyio
__all__ = ["json_log"]  # the fixture, shared with test_request_logs


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """The fake's clock follows the wall clock, like the moderation harness's approvals."""
    return XApiSandboxConfig()


def _enqueue(settings: Settings, *argv: str) -> int:
    """`twitstack enqueue ...` as the CLI parses and runs it (logging left as configured)."""
    parser = argparse.ArgumentParser(prog="twitstack")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["enqueue", *argv])
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    return handler(args, settings)


async def test_enqueue_record_edit_approve_execute_followed_by_id(
    make_settings: Callable[..., Settings],
    redis: Redis,
    redis_url: str,
    sandbox: RunningSandbox,
    tmp_path: Path,
    json_log: io.StringIO,
) -> None:
    ops_settings = make_settings(redis_url=redis_url)
    # The command runs its own event loop, as from a shell: give it a thread.
    code = await anyio.to_thread.run_sync(_enqueue, ops_settings, "tweet", "first words")
    assert code == 0
    [raw] = await redis.lrange(keys.WRITE_QUEUE, 0, -1)
    request = decode_write_request(raw)
    passwords = PasswordService(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    async with open_harness(redis_url, tmp_path, passwords) as mod:
        await mod.add_user("mo", Role.MODERATOR)
        await mod.add_user("ann", Role.MODERATOR)  # whoever edits may not approve
        auth = {"authorization": f"Bearer {await mod.bearer('mo')}"}
        ann = {"authorization": f"Bearer {await mod.bearer('ann')}"}
        recorder = WaitingRecorder(mod.redis, mod.deps.decisions.ledger, actor=ACTOR)
        assert await record_waiting(recorder, mod.deps.history) == 1
        async with mod.client() as client:
            edited = await client.patch(
                f"/api/requests/{request.id}",
                json={"revision": 1, "payload": {"text": "better words"}},
                headers=auth,
            )
            assert edited.status_code == 200, edited.text
            seen = {"revision": 2, "content_hash": await mod.content_hash(request.id)}
            approved = await client.post(
                f"/api/requests/{request.id}/approve", json=seen, headers=ann
            )
            assert approved.status_code == 200, approved.text
        public_key = mod.deps.signer.public_key
    trusted = public_key if isinstance(public_key, str) else public_key_to_base64(public_key)
    settings = writer_settings(make_settings, sandbox.base_url, approval_public_keys=[trusted])
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.wait_states([request.id], {ModerationStatus.EXECUTED})
    assert sandbox.state.content.post_text_counts() == {"better words": 1}

    life = about(json_log, request.id)
    assert [(x["event"], x.get("state")) for x in life] == [
        ("ops.request_enqueued", None),
        ("moderation.request_recorded", None),
        ("moderation.request_edited", None),
        ("moderation.request_approved", None),
        ("writer.request_state_changed", "sending"),
        ("writer.request_state_changed", "executed"),
    ]
    assert {(x["account"], x["action"]) for x in life} == {(request.account, "tweet")}
    assert {x["level"] for x in life} == {"info"}  # nothing failed
