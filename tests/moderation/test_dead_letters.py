"""Dead letters: atomic retry/discard, lookup anywhere in the list, previews instead of DM text."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from tests.moderation.harness import Harness
from twitstack.moderation.dead_letters import FIND_CHUNK, DeadLetterBox, preview
from twitstack.moderation.roles import Role
from twitstack.writes import keys

pytestmark = pytest.mark.anyio
OTHER = b'{"action": "tweet", "payload": {"text": "another producer"}}'


class ProducerBetweenCalls(Redis):
    """A client before each of whose commands another producer RPUSHes a message.

    That is the worst interleaving a multi-round-trip operation can meet: whatever it does
    after its first round trip finds the other producer's message at the queue's tail.
    """

    pushed = 0
    producer: Redis | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        assert self.producer is not None
        await self.producer.rpush(keys.WRITE_QUEUE, OTHER)
        self.pushed += 1
        return await super().execute_command(*args, **options)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    async with Redis.from_url(redis_url) as client:
        yield client


def _dead(message: str, reason: str = "too_large") -> str:
    return json.dumps({"reason": reason, "detail": "x", "raw": message})


def _tweet(text: str) -> str:
    return json.dumps({"action": "tweet", "payload": {"text": text}})


async def test_retry_of_an_entry_someone_else_handled_leaves_other_messages_alone(
    redis: Redis, redis_url: str
) -> None:
    """The old check-then-RPOP popped whatever was last on the queue: another producer's."""
    await redis.rpush(keys.DEAD_LETTER, _dead(_tweet("mine")))
    [entry] = await DeadLetterBox(redis).list()
    assert await DeadLetterBox(redis).discard(entry)
    racing = ProducerBetweenCalls.from_url(redis_url)
    racing.producer = redis
    try:
        retried = await DeadLetterBox(racing).retry(entry)
    finally:
        await racing.aclose()
    queued = await redis.lrange(keys.WRITE_QUEUE, 0, -1)
    assert retried is False
    assert racing.pushed >= 1
    assert queued == [OTHER] * racing.pushed


async def test_concurrent_retries_requeue_the_message_exactly_once(redis: Redis) -> None:
    await redis.rpush(keys.DEAD_LETTER, _dead(_tweet("once")))
    box = DeadLetterBox(redis)
    [entry] = await box.list()
    results: list[bool] = []

    async def retry() -> None:
        results.append(await box.retry(entry))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(retry)
    assert sorted(results) == [False] * 9 + [True]
    assert await redis.lrange(keys.WRITE_QUEUE, 0, -1) == [_tweet("once").encode()]
    assert await redis.llen(keys.DEAD_LETTER) == 0


async def test_find_looks_past_the_first_chunk(redis: Redis) -> None:
    total = FIND_CHUNK * 2 + 137
    await redis.rpush(keys.DEAD_LETTER, *[_dead(_tweet(f"n{i}")) for i in range(total)])
    box = DeadLetterBox(redis)
    everything = await box.list(total)
    last, first = everything[-1], everything[0]
    assert await box.find(last.id) == last
    assert await box.find(first.id) == first
    assert await box.find("0" * 16) is None


def test_preview_cuts_dm_text_shorter_than_tweet_text() -> None:
    dm = json.dumps({"action": "dm", "payload": {"recipient_id": "42", "text": "s" * 100}})
    tweet = _tweet("t" * 100)
    assert "s" * 20 not in preview(dm)
    assert "s" * 19 in preview(dm)
    assert "t" * 40 not in preview(tweet)
    assert "t" * 39 in preview(tweet)


async def test_list_page_shows_previews_and_the_detail_page_shows_the_dm_audited(
    mod: Harness,
) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    secret = "the private part of this direct message nobody should skim"
    dm = json.dumps({"action": "dm", "payload": {"recipient_id": "42", "text": secret}})
    filler = [_dead(_tweet(f"filler {i}")) for i in range(600)]
    await mod.redis.rpush(keys.DEAD_LETTER, *filler, _dead(dm))
    [entry] = [e for e in await mod.deps.dead_letters.list(601) if e.message == dm]
    async with mod.client() as client:
        await mod.login(client, "mo")
        listing = await client.get("/dead-letters")
        assert await mod.deps.audit.count(action="dead_letter.view") == 0
        detail = await client.get(f"/dead-letters/{entry.id}")
        missing = await client.get("/dead-letters/0000000000000000")
    assert secret[:19] not in listing.text  # the DM is past the first 500 on the list page
    assert "601 messages" in listing.text
    first = re.search(r"<code class=\"preview\">([^<]*)</code>", listing.text)
    assert first is not None
    assert "filler 0" in first.group(1)
    assert detail.status_code == 200
    assert secret in detail.text
    assert missing.status_code == 404
    assert await mod.deps.audit.count(action="dead_letter.view") == 1


async def test_list_page_never_shows_a_whole_dm(mod: Harness) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    secret = "meet me at the usual place at nine, bring the documents"
    dm = json.dumps({"action": "dm", "payload": {"recipient_id": "42", "text": secret}})
    await mod.redis.rpush(keys.DEAD_LETTER, _dead(dm))
    async with mod.client() as client:
        await mod.login(client, "mo")
        listing = await client.get("/dead-letters")
    assert "meet me at the usua" in listing.text
    assert "documents" not in listing.text
    assert "usual place" not in listing.text


async def test_retry_and_discard_reach_entries_past_the_first_500(mod: Harness) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    await mod.redis.rpush(
        keys.DEAD_LETTER, *[_dead(_tweet(f"n{i}")) for i in range(520)], _dead(_tweet("deep"))
    )
    entries = await mod.deps.dead_letters.list(521)
    deep, other = entries[-1], entries[-2]
    async with mod.client() as client:
        csrf = await mod.login(client, "mo")
        retried = await client.post(f"/dead-letters/{deep.id}/retry", data={"csrf_token": csrf})
        after_retry = await client.get(retried.headers["location"])
        discarded = await client.post(
            f"/dead-letters/{other.id}/discard", data={"csrf_token": csrf}
        )
        after_discard = await client.get(discarded.headers["location"])
    assert "Message put back on the queue." in after_retry.text
    assert "Entry discarded." in after_discard.text
    assert await mod.redis.lrange(keys.WRITE_QUEUE, 0, -1) == [_tweet("deep").encode()]
    assert await mod.redis.llen(keys.DEAD_LETTER) == 519
    assert await mod.deps.audit.count(action="dead_letter.retry") == 1
    assert await mod.deps.audit.count(action="dead_letter.discard") == 1
