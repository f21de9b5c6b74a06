"""The writer meets ledger records it cannot read: quarantined, dead-lettered, and it goes on."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus

S = ModerationStatus
pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """The fake's clock follows the wall clock here, like the ledger's timestamps."""
    return XApiSandboxConfig()


async def _quarantined(redis: Redis) -> list[dict[str, str]]:
    return [json.loads(raw) for raw in await redis.lrange(keys.QUARANTINE, 0, -1)]


async def test_message_whose_record_is_not_json_is_dead_lettered_and_quarantined(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """The message goes to the dead letters with the reason, the record to quarantine, once."""
    settings = writer_settings(make_settings, sandbox.base_url)
    poisoned = approved(tweet("its record gets broken"))
    good = approved(tweet("the next one is written"))
    await RequestLedger(redis).record(poisoned, actor="producer")
    await redis.hset(keys.request(poisoned.id), "request", "{not json")
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(poisoned, good)
        await writer.wait_states([good.id], {S.EXECUTED})

        async def dead_lettered() -> bool:
            return await redis.llen(keys.DEAD_LETTER) == 1

        await wait_until(dead_lettered)
        [letter] = await writer.dead_letters()
        assert letter["reason"] == "unreadable_record"
        assert writer.metric("writer_dead_letters_total", reason="unreadable_record") == 1
        assert (
            writer.metric("twitstack_quarantined_total", source="record", reason="malformed_record")
            == 1
        )
    [entry] = await _quarantined(redis)
    assert (entry["service"], entry["ref"]) == ("writer", poisoned.id)
    assert [post.text for post in sandbox.state.content.posts.values()] == [
        "the next one is written"
    ]


async def test_sweeps_pass_over_an_unreadable_record(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A broken `unknown` record is quarantined once; the reconciler settles the others."""
    settings = writer_settings(make_settings, sandbox.base_url)
    ledger = RequestLedger(redis)
    broken, fine = approved(tweet("broken while unknown")), approved(tweet("fine while unknown"))
    for request in (broken, fine):
        await ledger.record(request, actor="producer")
        await ledger.mark_sending(request.id, actor="writer")
        await ledger.transition(
            request.id, S.UNKNOWN, from_states=[S.SENDING], actor="writer", reason="test"
        )
    await redis.hset(keys.request(broken.id), "request", '{"action": "tweet"')
    async with running_writer(settings, redis, sandbox) as writer:
        # Never sent: the reconciler looks, finds it absent and settles it (a sweep that
        # raised on the broken record would never get to it).
        await writer.wait_states([fine.id], {S.EXECUTED, S.APPROVED, S.NEEDS_REVIEW, S.FAILED})
    [entry] = await _quarantined(redis)
    assert (entry["source"], entry["ref"], entry["reason"]) == (
        "record",
        broken.id,
        "malformed_record",
    )
