"""Threads end to end against the fake X: a reply chain, resumed after faults, never doubled."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import Endpoint, FaultKind, XApiSandboxConfig
from twitstack.sandbox.xapi.faults import ScriptedResponse, ScriptEntry
from twitstack.sandbox.xapi.store import StoredPost
from twitstack.writes.ledger_types import LedgerRecord
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.thread_progress import ThreadLedger

S = ModerationStatus
pytestmark = pytest.mark.anyio
FORBIDDEN = ScriptedResponse(
    status=403,
    body={"title": "Forbidden", "detail": "You are not permitted to perform this action.",
          "type": "about:blank", "status": 403},
)  # fmt: skip


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()


def thread(*texts: str) -> WriteRequest:
    return WriteRequest(
        action=WriteAction.THREAD, payload={"parts": [{"text": text} for text in texts]}
    )


def script_part(sandbox: RunningSandbox, part: int, entry: ScriptEntry) -> None:
    """Fault the `part`-th (1-based) create call, letting the earlier ones through."""
    passes = [ScriptEntry(fault=FaultKind.PASS) for _ in range(part - 1)]
    sandbox.state.faults.script(Endpoint.CREATE_TWEET, [*passes, entry])


def chain(sandbox: RunningSandbox, texts: list[str]) -> list[StoredPost]:
    """The posts carrying `texts`, asserting each exists once and answers the one before."""
    posts = list(sandbox.state.content.posts.values())
    by_text: dict[str, list[StoredPost]] = {}
    for post in posts:
        by_text.setdefault(post.text, []).append(post)
    found = []
    for index, text in enumerate(texts):
        assert len(by_text.get(text, [])) == 1, f"part {index + 1} posted {by_text.get(text)}"
        post = by_text[text][0]
        expected = found[-1].id if found else None
        assert post.reply_to == expected, f"part {index + 1} answers {post.reply_to}"
        found.append(post)
    assert {post.conversation_id for post in found} == {found[0].id}
    return found


async def post_thread(
    make_settings: Callable[..., Settings],
    redis: Redis,
    sandbox: RunningSandbox,
    texts: list[str],
    until: ModerationStatus,
    **overrides: object,
) -> LedgerRecord:
    """Push one approved thread of `texts` to a running writer; its record once it is `until`."""
    request = approved(thread(*texts))
    settings = writer_settings(make_settings, sandbox.base_url, **overrides)
    async with running_writer(settings, redis, sandbox) as w:
        await w.push(request)
        await w.wait_states([request.id], {until})
        return await w.record(request.id)


async def test_thread_posts_a_reply_chain_and_records_every_id(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Three parts: three posts, each replying to the one before, their ids in the result."""
    texts = ["one of three", "two of three", "three of three"]
    record = await post_thread(make_settings, redis, sandbox, texts, S.EXECUTED)
    posts = chain(sandbox, texts)
    assert record.result is not None
    assert record.result["thread_ids"] == [post.id for post in posts]
    assert record.result["tweet_id"] == posts[0].id
    assert record.result["parts_posted"] == 3


@pytest.mark.parametrize(
    "fault",
    [FaultKind.COMMIT_THEN_503, FaultKind.COMMIT_THEN_RESET, FaultKind.COMMIT_THEN_TIMEOUT],
)
async def test_commit_then_fail_on_a_middle_part_resumes_after_it(
    make_settings: Callable[..., Settings],
    redis: Redis,
    sandbox: RunningSandbox,
    fault: FaultKind,
) -> None:
    """Part 2 is stored by X, then 503 / reset / timeout: found on read-back, part 3 follows."""
    sandbox.state.faults.configure(
        sandbox.state.faults.settings.model_copy(update={"latency_s": 4})
    )
    script_part(sandbox, 2, ScriptEntry(fault=fault))
    texts = [f"middle {fault.value} part {i}" for i in range(1, 5)]
    record = await post_thread(make_settings, redis, sandbox, texts, S.EXECUTED)
    posts = chain(sandbox, texts)
    assert record.result is not None
    assert record.result["thread_ids"] == [post.id for post in posts]
    assert record.attempt == 2  # resumed once, at part 3


async def test_503_before_commit_on_a_middle_part_sends_it_again(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Part 3 answered 503 without being stored: absent on read-back, sent again, once."""
    script_part(sandbox, 3, ScriptEntry(fault=FaultKind.ERROR_503))
    texts = [f"lost part {i}" for i in range(1, 5)]
    await post_thread(make_settings, redis, sandbox, texts, S.EXECUTED, reconcile_grace_s=0)
    chain(sandbox, texts)


async def test_lagging_read_back_then_duplicate_refusal_is_reconciled(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Part 2 stored then 503, an empty read-back, a re-send X refuses as duplicate: found."""
    script_part(sandbox, 2, ScriptEntry(fault=FaultKind.COMMIT_THEN_503))
    lagging = ScriptedResponse(status=200, body={"data": [], "meta": {"result_count": 0}})
    sandbox.state.faults.script(Endpoint.USER_TWEETS, [ScriptEntry(response=lagging)])
    texts = [f"lagging part {i}" for i in range(1, 4)]
    await post_thread(make_settings, redis, sandbox, texts, S.EXECUTED, reconcile_grace_s=0)
    chain(sandbox, texts)


async def test_permanent_refusal_on_part_3_leaves_the_live_parts_for_a_human(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A 403 on part 3 of 5: failed, parts 1-2 live and listed, nothing after part 2 posted."""
    script_part(sandbox, 3, ScriptEntry(response=FORBIDDEN))
    texts = [f"refused thread part {i}" for i in range(1, 6)]
    record = await post_thread(make_settings, redis, sandbox, texts, S.FAILED)
    posts = chain(sandbox, texts[:2])
    assert len(sandbox.state.content.posts) == 2
    assert record.result is not None
    assert record.result["thread_ids"] == [post.id for post in posts]
    assert record.result["failed_part"] == 3
    assert record.result["parts"] == 5
    assert "not permitted" in record.result["detail"]


async def test_rate_limit_mid_thread_waits_and_resumes_at_the_refused_part(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A 429 on part 2 (not sent): back to approved, later part 2 and 3 follow, once each."""
    limited = ScriptedResponse(
        status=429,
        body={"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
              "status": 429},
        headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                 "x-rate-limit-reset": str(int(sandbox.state.clock.now()))},
    )  # fmt: skip
    script_part(sandbox, 2, ScriptEntry(response=limited))
    texts = [f"limited part {i}" for i in range(1, 4)]
    await post_thread(make_settings, redis, sandbox, texts, S.EXECUTED)
    chain(sandbox, texts)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"parts": [{"text": f"p{i}"} for i in range(26)]}, "payload.parts"),
        ({"parts": [{"text": "fine"}, {"text": ""}]}, "payload.parts[1].text"),
        ({"parts": [{"text": "fine"}, {"text": "x" * 281}]}, "payload.parts[1].text"),
        ({"parts": [{"text": "a"}, {"text": "b", "reply": {"in_reply_to_tweet_id": "1"}}]},
         "payload.parts[1].reply"),
        ({"parts": [{"text": "a", "poll": {"options": list("abcde"), "duration_minutes": 5}},
                    {"text": "b"}]}, "payload.parts[0].poll.options"),
    ],
)  # fmt: skip
async def test_hostile_thread_messages_are_dead_lettered_with_the_field(
    make_settings: Callable[..., Settings],
    redis: Redis,
    sandbox: RunningSandbox,
    payload: dict[str, object],
    field: str,
) -> None:
    """A bad thread on write_queue: dead-lettered invalid_payload naming the part; nothing sent."""
    raw = json.dumps({"action": "thread", "payload": payload, "moderation": "pending"})
    settings = writer_settings(make_settings, sandbox.base_url)
    async with running_writer(settings, redis, sandbox) as w:
        await w.push_raw(raw.encode())

        async def dead() -> bool:
            return bool(await w.dead_letters())

        await wait_until(dead, timeout_s=10)
        [letter] = await w.dead_letters()
    assert letter["reason"] == "invalid_payload"
    assert letter["detail"].startswith(f"{field}: ")
    assert sandbox.state.content.posts == {}


async def test_a_thread_with_every_part_recorded_is_executed_without_sending(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """All ids in the ledger before the attempt (a crash before `executed`): nothing re-sent."""
    texts = ["already one", "already two"]
    posted = [sandbox.state.content.create_post("1000", text, {"text": text}).id for text in texts]
    request = approved(thread(*texts))
    settings = writer_settings(make_settings, sandbox.base_url)
    async with running_writer(settings, redis, sandbox) as w:
        # As a crashed attempt leaves it: recorded, both ids in thread_posted, approved again.
        await w.ledger.record(request, actor="test")
        await redis.hset(f"writes:request:{request.id}", "thread_posted", ",".join(posted))
        await w.ledger.retry_later(
            request.id, not_before=request.created_at, actor="test", reason="test",
            from_states=[S.APPROVED],
        )  # fmt: skip
        await w.wait_states([request.id], {S.EXECUTED})
        record = await w.record(request.id)
    assert len(sandbox.state.content.posts) == 2
    assert record.result is not None
    assert record.result["thread_ids"] == posted


async def test_a_stop_between_parts_ends_the_attempt_and_a_restart_resumes(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Stopped while part 2 is in flight: part 2 settles, part 3 waits; the next run posts it."""
    sandbox.state.faults.configure(
        sandbox.state.faults.settings.model_copy(update={"latency_s": 1})
    )
    script_part(sandbox, 2, ScriptEntry(fault=FaultKind.LATENCY))
    texts = [f"stopped part {i}" for i in range(1, 5)]
    request = approved(thread(*texts))
    settings = writer_settings(make_settings, sandbox.base_url)
    async with running_writer(settings, redis, sandbox) as w:
        await w.push(request)

        threads = ThreadLedger(redis, events_maxlen=1000)

        async def second_in_flight() -> bool:
            return (await threads.progress(request.id)).inflight == 1

        await wait_until(second_in_flight, timeout_s=10, poll_s=0.005)
        w.service.request_stop()  # part 2 is held 1 s by the fake: the stop comes mid-thread
    record = await w.record(request.id)
    assert record.state is S.APPROVED
    assert record.last_reason == "thread_paused_for_stop"
    assert [p.text for p in sandbox.state.content.posts.values()] == texts[:2]
    async with running_writer(settings, redis, sandbox) as w:
        await w.wait_states([request.id], {S.EXECUTED})
    chain(sandbox, texts)
