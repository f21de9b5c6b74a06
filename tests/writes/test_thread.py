"""Thread payloads, their parts as X calls, post references, and progress in the ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from twitstack.writes.errors import PayloadError
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.post_ref import parse_post_ref
from twitstack.writes.thread import part_payload, part_reply_target
from twitstack.writes.thread_progress import PartStatus, ThreadLedger
from twitstack.writes.validation import validate_payload

S = ModerationStatus


def _parts(*texts: str) -> dict[str, object]:
    return {"parts": [{"text": t} for t in texts]}


def test_each_part_after_the_first_answers_the_one_before() -> None:
    """Part 1 answers the thread's own reply target (if any); part n answers part n-1."""
    payload = {**_parts("a", "b", "c"), "reply": {"in_reply_to_tweet_id": "5"}}
    validate_payload(WriteAction.THREAD, payload)
    assert part_payload(payload, 0, None) == {"text": "a", "reply": {"in_reply_to_tweet_id": "5"}}
    assert part_payload(payload, 2, "11") == {"text": "c", "reply": {"in_reply_to_tweet_id": "11"}}
    assert part_reply_target(payload, 0, ()) == "5"
    assert part_reply_target(payload, 1, ("10",)) == "10"
    with pytest.raises(ValueError, match="needs the X id of part 1"):
        part_payload(payload, 1, None)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"parts": "a"}, "payload.parts"),
        ({"parts": [{"text": "a"}, "b"]}, "payload.parts[1]"),
        ({"parts": [{"text": "a"}, {"poll": {}}]}, "payload.parts[1].text"),
        ({"parts": [{"text": "a"}, {"text": "b", "quote_tweet_id": "x"}]},
         "payload.parts[1].quote_tweet_id"),
        ({**_parts("a", "b"), "extra": 1}, "payload.extra"),
        ({**_parts("a", "b"), "reply": {"in_reply_to_tweet_id": "z"}},
         "payload.reply.in_reply_to_tweet_id"),
        (_parts("same", "same"), "payload.parts[1].text"),
        (_parts("é", "e\u0301"), "payload.parts[1].text"),  # equal after NFC, as X compares
    ],
)  # fmt: skip
def test_bad_thread_payloads_name_the_part(payload: dict[str, object], field: str) -> None:
    """The error's field points into the part that breaks a rule."""
    with pytest.raises(PayloadError) as caught:
        validate_payload(WriteAction.THREAD, payload)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123", "123"),
        (" https://x.com/a_b/status/9 ", "9"),
        ("http://www.twitter.com/i/web/status/8", "8"),
        ("x.com/someone/statuses/7/", "7"),
        ("https://mobile.x.com/u/status/6?t=abc#frag", "6"),
    ],
)
def test_post_references_give_the_id(value: str, expected: str) -> None:
    assert parse_post_ref(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "https://example.com/u/status/1",
        "https://x.com.evil.example/u/status/1",
        "ftp://x.com/u/status/1",
        "https://x.com/u/status/abc",
        "https://x.com/u/likes",
        "https://x.com/u/status/12345678901234567890",
        "",
        "x" * 400,
    ],
)
def test_other_references_are_refused(value: str) -> None:
    with pytest.raises(PayloadError, match="expected a post id"):
        parse_post_ref(value)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.mark.anyio
async def test_parts_are_begun_and_recorded_only_in_order_and_in_sending(redis: Redis) -> None:
    """The compare-and-set rules of thread progress: state, attempt, next part, same id."""
    ledger = RequestLedger(redis)
    threads = ThreadLedger(redis, events_maxlen=1000)
    request = WriteRequest(action=WriteAction.THREAD, payload=_parts("a", "b", "c"))
    await ledger.record(request, actor="t")
    assert (
        await threads.begin_part(request.id, 0, attempt=1, actor="t") is PartStatus.STATE_MISMATCH
    )
    await ledger.transition(request.id, S.APPROVED, from_states=[S.PENDING], actor="t", reason="r")
    moved = await ledger.mark_sending(request.id, actor="t")
    attempt = moved.attempt
    assert await threads.begin_part(request.id, 1, attempt=attempt, actor="t") is (
        PartStatus.PART_MISMATCH
    )
    assert await threads.begin_part(request.id, 0, attempt=attempt + 1, actor="t") is (
        PartStatus.ATTEMPT_MISMATCH
    )
    assert await threads.begin_part(request.id, 0, attempt=attempt, actor="t") is PartStatus.OK
    progress = await threads.progress(request.id)
    assert (progress.posted, progress.inflight) == ((), 0)
    assert progress.inflight_since is not None
    assert await threads.part_posted(request.id, 1, "12", actor="t") == (
        PartStatus.PART_MISMATCH, "0",
    )  # fmt: skip
    assert await threads.part_posted(request.id, 0, "11", actor="t") == (PartStatus.OK, "")
    assert await threads.part_posted(request.id, 0, "11", actor="t") == (PartStatus.ALREADY, "")
    assert await threads.part_posted(request.id, 0, "99", actor="t") == (PartStatus.CONFLICT, "11")
    progress = await threads.progress(request.id)
    assert (progress.posted, progress.inflight, progress.next_part) == (("11",), None, 1)
    with pytest.raises(ValueError, match="1-19 digits"):
        await threads.part_posted(request.id, 1, '1","x', actor="t")
    events = await ledger.read_events()
    [posted] = [e for e in events if e.reason == "thread_part_posted"]
    assert posted.result == {"part": 1, "tweet_id": "11"}
    assert (posted.from_state, posted.to_state) == (S.SENDING, S.SENDING)


@pytest.mark.anyio
async def test_junk_progress_fields_read_as_no_progress(redis: Redis) -> None:
    """Anyone with Redis access can HSET: non-ids and non-numbers are ignored, not raised."""
    ledger = RequestLedger(redis)
    request = WriteRequest(action=WriteAction.THREAD, payload=_parts("a", "b"))
    await ledger.record(request, actor="t")
    await redis.hset(
        f"writes:request:{request.id}",
        mapping={"thread_posted": "12,abc,", "thread_inflight": "x", "thread_inflight_ms": "-"},
    )
    progress = await ThreadLedger(redis, events_maxlen=10).progress(request.id)
    assert (progress.posted, progress.inflight, progress.inflight_since) == (("12",), None, None)
