"""Adversary: a signed message replayed after its request was put back in `approved` by hand.

The spent approval lets the same record be sent again (after a 429 or a reconciliation), for
as long as its hash names the nonce. A request that reached a final state must never be sent
again, whatever is then written to its hash or done to its tombstone.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, writer_settings
from tests.writer.test_approval_replays import settled
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()


async def test_an_executed_dm_flipped_back_to_approved_without_its_tombstone_is_not_sent(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """HSET state approved and DEL the tombstone (two writes), then re-push the captured
    message: its hash still names the spent nonce, which must not read as a re-send. A DM:
    X has no duplicate guard for those (a tweet's second copy would be refused by X)."""
    settings = writer_settings(make_settings, sandbox.base_url)
    request = approved(
        WriteRequest(action=WriteAction.DM, payload={"recipient_id": "1001", "text": "once"})
    )
    captured = encode_write_request(request)
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push_raw(captured)
        await writer.wait_states([request.id], {S.EXECUTED})
        await redis.hset(keys.request(request.id), "state", "approved")
        await redis.delete(keys.tombstone(request.id))
        await writer.push_raw(captured)
        await writer.wait_states([request.id], {S.NEEDS_REVIEW})
        await settled(writer, "spent")
    assert len(sandbox.state.content.dms) == 1
