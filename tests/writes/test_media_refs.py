"""Which files live requests still need: the ledger's state indexes and the queue, on Redis."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from twitstack.writes import keys, media_refs
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.media_refs import IncompleteScan, hashes_in, referenced_media
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.models import WriteAction, WriteRequest, utcnow

pytestmark = pytest.mark.anyio


def sha(n: int) -> str:
    return hashlib.sha256(f"file {n}".encode()).hexdigest()


def tweet(n: int, **extra: object) -> WriteRequest:
    media = {"attachments": [{"sha256": sha(n), "type": "image/png", "size": 100 + n}]}
    return WriteRequest(
        action=WriteAction.TWEET, payload={"text": f"t{n}", "media": media}, author="test",
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_live_requests_and_queued_messages_keep_their_files(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pending, scheduled-approved, needs_review and queued files are named; final ones not."""
    monkeypatch.setattr(media_refs, "_PAGE", 2)  # several pages per state index
    ledger = RequestLedger(redis)
    live: list[int] = []
    for n in range(5):  # five pending: three pages
        await ledger.record(tweet(n), actor="test")
        live.append(n)
    later = utcnow() + timedelta(days=60)
    scheduled = tweet(10, moderation=S.APPROVED, not_before=later)
    assert (await ledger.record(scheduled, actor="test")).scheduled
    live.append(10)
    review = tweet(11)
    await ledger.record(review, actor="test")
    await ledger.transition(
        review.id, S.NEEDS_REVIEW, from_states=[S.PENDING], actor="writer", reason="t"
    )
    live.append(11)
    rejected, expired = tweet(20), tweet(21)
    for request, state in ((rejected, S.REJECTED), (expired, S.EXPIRED)):
        await ledger.record(request, actor="test")
        await ledger.transition(
            request.id, state, from_states=[S.PENDING], actor="test", reason="t"
        )
    await redis.lpush(keys.WRITE_QUEUE, json.dumps(tweet(30).to_dict()))
    await redis.lpush(keys.processing_list("writer-1"), json.dumps(tweet(31).to_dict()))
    live += [30, 31]

    found = await referenced_media(redis)

    assert {sha(n) for n in live} <= found
    assert sha(20) not in found
    assert sha(21) not in found


async def test_an_unparseable_live_record_still_keeps_what_it_names(redis: Redis) -> None:
    """A record the ledger cannot parse any more is searched as text, not skipped."""
    ledger = RequestLedger(redis)
    request = tweet(1)
    await ledger.record(request, actor="test")
    raw = await redis.hget(keys.request(request.id), "request")
    assert isinstance(raw, bytes)
    await redis.hset(keys.request(request.id), "request", b"\xff{not json " + raw)
    await redis.set(keys.request("junk"), "a string, not a hash")
    await redis.zadd(keys.state_index(S.PENDING), {"junk": 1})
    assert sha(1) in await referenced_media(redis)


async def test_a_scan_past_its_bound_refuses_to_answer(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partial answer would let prune delete a needed file: it raises instead."""
    monkeypatch.setattr(media_refs, "_PAGE", 1)
    ledger = RequestLedger(redis)
    for n in range(4):
        await ledger.record(tweet(n), actor="test")
    with pytest.raises(IncompleteScan):
        await referenced_media(redis, max_rounds=3)


def test_hashes_in_finds_only_whole_64_digit_tokens() -> None:
    assert hashes_in(f'{{"sha256": "{sha(1)}"}}') == {sha(1)}
    assert hashes_in(("a" * 65).encode()) == set()
    assert hashes_in(None) == set()
