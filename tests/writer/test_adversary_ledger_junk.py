"""Adversary: junk written by hand into one request's ledger hash must not wedge the writer.

Anyone with Redis access can write a request hash. The writer must quarantine what it cannot
move (the message kept in the dead letters), leave no reservation or spent approval behind,
and go on with the other requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, wait_until, writer_settings
from tests.writer.test_send_steps import BUDGET, ENDPOINT, SPEND, in_flight, steps_for
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writer.message_handler import is_script_data_error
from twitstack.writer.send_steps import BeginOutcome, PostClaim
from twitstack.writes import keys
from twitstack.writes.claims import claim_key
from twitstack.writes.errors import UnreadableError
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()


async def test_a_junk_attempt_held_by_the_rate_limit_does_not_stop_the_writer(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """No room in the window: the request is put back for later, whose reply names the junk
    attempt. The handler's last resort (dead letter, flag for review) must not raise out of
    the consumer: the writer keeps running and sends the next request."""
    settings = writer_settings(make_settings, sandbox.base_url)
    bad = approved(tweet("junk attempt, no room"))
    await RequestLedger(redis).record(bad, actor="moderation")
    await redis.hset(keys.request(bad.id), "attempt", "x")
    reset = int(time.time()) + 3600
    await redis.hset(
        BUDGET, mapping={"window.limit": 1, "window.remaining": 0, "window.reset": reset}
    )
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(bad)

        async def dead_lettered() -> bool:
            return await redis.llen(keys.DEAD_LETTER) == 1

        await wait_until(dead_lettered, timeout_s=8)
        await redis.delete(BUDGET)
        good = approved(tweet("after the junk"))
        await writer.push(good)
        await writer.wait_states([good.id], {S.EXECUTED}, timeout_s=8)
        # Kept for a human either way: flagged for review by the handler's last resort, or
        # (begin checks the record first) quarantined with the message in the dead letters.
        assert await redis.hget(keys.request(bad.id), "state") in (b"needs_review", b"approved")
    assert [post.text for post in sandbox.state.content.posts.values()] == ["after the junk"]


# Fields of a held record that the move into sending cannot take (HINCRBY refuses the count,
# ZADD the score), written by hand.
UNMOVABLE = {
    "attempt_not_a_count": ("attempt", "x"),
    "attempt_not_an_integer": ("attempt", "1.5"),
    "attempt_past_int64": ("attempt", "9223372036854775807"),
    "created_ms_not_a_number": ("created_ms", "x"),
    "created_ms_nan": ("created_ms", "nan"),
}


@pytest.mark.parametrize("junk", sorted(UNMOVABLE))
async def test_begin_on_an_unmovable_record_writes_nothing_and_says_unreadable(
    redis: Redis, junk: str
) -> None:
    """A Lua error stops a script midway, keeping what it wrote: the reservation, the spent
    approval, the approved index entry dropped. begin must refuse before any of it."""
    steps, ledger = steps_for(redis)
    request = approved(tweet(f"held with junk {junk}"))
    await ledger.record(request, actor="moderation")
    field, value = UNMOVABLE[junk]
    await redis.hset(keys.request(request.id), field, value)
    with pytest.raises(UnreadableError) as raised:
        await steps.begin(request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND)
    assert (raised.value.source, raised.value.ref) == ("record", request.id)
    assert await in_flight(redis) is None
    assert await redis.keys("writes:spent:*") == []
    assert await redis.zscore(keys.state_index(S.APPROVED), request.id) is not None
    assert await redis.hget(keys.request(request.id), "state") == b"approved"
    assert await redis.hgetall(SPEND[0][0]) == {}


async def test_a_record_the_writer_cannot_move_is_quarantined_not_retried_for_ever(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Its message goes to the dead letters, its record to quarantine; no reservation is left
    behind to block the account, and the next request is sent."""
    settings = writer_settings(make_settings, sandbox.base_url)
    bad = approved(tweet("junk attempt"))
    await RequestLedger(redis).record(bad, actor="moderation")
    await redis.hset(keys.request(bad.id), "attempt", "x")
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(bad)

        async def dead_lettered() -> bool:
            return await redis.llen(keys.DEAD_LETTER) == 1

        await wait_until(dead_lettered, timeout_s=8)
        [letter] = await writer.dead_letters()
        assert letter["reason"] == "unreadable_record"
        good = approved(tweet("sent after it"))
        await writer.push(good)
        await writer.wait_states([good.id], {S.EXECUTED}, timeout_s=8)
        assert await in_flight(redis) in (None, b"0")
        assert writer.metric("writer_redis_errors_total") == 0
    assert [post.text for post in sandbox.state.content.posts.values()] == ["sent after it"]
    assert await redis.hget(keys.request(bad.id), "state") == b"approved"
    assert await redis.llen(keys.QUARANTINE) == 1


# Reset times no calendar holds (X answering in milliseconds, or junk written by hand), on a
# window with no room left.
FAR_RESETS = {"milliseconds": "1800000000000", "past_year_9999": "1e13"}


@pytest.mark.parametrize("reset", sorted(FAR_RESETS))
async def test_a_window_reset_past_the_calendar_holds_the_request_without_losing_it(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox, reset: str
) -> None:
    """The request waits approved in the schedule; it is not dead-lettered as a handler bug."""
    settings = writer_settings(make_settings, sandbox.base_url)
    held = approved(tweet("no room until the end of time"))
    await redis.hset(
        BUDGET,
        mapping={"window.limit": 1, "window.remaining": 0, "window.reset": FAR_RESETS[reset]},
    )
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(held)

        async def scheduled() -> bool:
            return await redis.zscore(keys.SCHEDULE, held.id) is not None

        await wait_until(scheduled, timeout_s=8)
        assert await writer.state(held.id) is S.APPROVED
        assert await redis.llen(keys.DEAD_LETTER) == 0
    assert sandbox.state.content.posts == {}


@pytest.mark.parametrize("fresh", [True, False], ids=["new_record", "held_record"])
async def test_a_spent_approval_key_of_another_type_refuses_the_send_and_keeps_nothing(
    redis: Redis, fresh: bool
) -> None:
    """A key of another type where the approval's nonce is spent: the approval counts as used
    (refused, for review), never a script error that keeps the reservation it made."""
    steps, ledger = steps_for(redis)
    request = approved(tweet("nonce key is a list"))
    assert request.approval is not None
    assert request.approval.nonce is not None
    await redis.rpush(keys.spent_approval(request.approval.nonce), "junk")
    if not fresh:
        await ledger.record(request, actor="moderation")
    begun = await steps.begin(
        request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND
    )
    assert (begun.outcome, begun.refused) == (BeginOutcome.REFUSED, "spent")
    assert await in_flight(redis) in (None, b"0")
    assert await redis.hget(keys.request(request.id), "state") == b"approved"


# Keys of one request's ledger entry holding another type (written by hand): every script
# that reads them stops with WRONGTYPE, on every attempt.
WRONG_TYPES = {
    "request_hash_is_a_string": lambda redis, request_id: redis.set(
        keys.request(request_id), "junk"
    ),
    "tombstone_is_a_list": lambda redis, request_id: redis.rpush(
        keys.tombstone(request_id), "junk"
    ),
}


@pytest.mark.parametrize("junk", sorted(WRONG_TYPES))
async def test_a_script_error_on_one_message_is_dead_lettered_not_retried_for_ever(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox, junk: str
) -> None:
    """A script error that no retry can cure is no Redis outage: the message is kept in the
    dead letters for an operator (not handed back to the head of the queue and taken again at
    once, by every consumer in turn), and the next request is sent."""
    settings = writer_settings(make_settings, sandbox.base_url)
    bad = approved(tweet(f"junk {junk}"))
    await WRONG_TYPES[junk](redis, bad.id)
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(bad)

        async def dead_lettered() -> bool:
            return await redis.llen(keys.DEAD_LETTER) == 1

        await wait_until(dead_lettered, timeout_s=8)
        good = approved(tweet("sent after the script error"))
        await writer.push(good)
        await writer.wait_states([good.id], {S.EXECUTED}, timeout_s=8)
        assert await redis.llen(keys.WRITE_QUEUE) == 0
        assert await in_flight(redis) in (None, b"0")
    [letter] = await writer.dead_letters()
    assert letter["reason"] == "handler_error"
    assert [post.text for post in sandbox.state.content.posts.values()] == [
        "sent after the script error"
    ]


async def test_only_a_script_stopped_by_its_data_counts_as_one(redis: Redis) -> None:
    """WRONGTYPE and ERR raised inside a script are; the same script refused for want of
    memory is not (handing its message back is right), nor a plain command's error."""
    await redis.rpush("junk:list", "x")
    await redis.hset("junk:hash", "n", "x")
    raised: dict[str, Exception] = {}
    for name, script, key in (
        ("wrongtype", "return redis.call('GET', KEYS[1])", "junk:list"),
        ("err", "return redis.call('HINCRBY', KEYS[1], 'n', 1)", "junk:hash"),
    ):
        with pytest.raises(ResponseError) as caught:
            await redis.eval(script, 1, key)
        raised[name] = caught.value
    with pytest.raises(ResponseError) as plain:
        await redis.get("junk:list")
    await redis.config_set("maxmemory", "1")
    try:
        with pytest.raises(ResponseError) as oom:
            await redis.eval("return redis.call('SET', KEYS[1], 'v')", 1, "junk:new")
    finally:
        await redis.config_set("maxmemory", "0")
    # A script refused by the ACL (a user missing a key pattern): retried, never dead-lettered.
    await redis.acl_setuser(
        "probe", enabled=True, passwords=["+probe"], keys=["allowed:*"],
        commands=["+@all"],
    )  # fmt: skip
    kwargs = redis.connection_pool.connection_kwargs
    limited = Redis(host=kwargs["host"], port=kwargs["port"], username="probe", password="probe")
    try:
        assert await limited.eval("return redis.call('GET', KEYS[1])", 1, "allowed:x") is None
        with pytest.raises(ResponseError) as refused:
            await limited.eval("return redis.call('GET', 'denied:x')", 0)
    finally:
        await limited.aclose()
        await redis.acl_deluser("probe")
    assert "@user_script:" in str(refused.value)
    assert not is_script_data_error(refused.value)
    assert is_script_data_error(raised["wrongtype"])
    assert is_script_data_error(raised["err"])
    assert not is_script_data_error(oom.value)
    assert not is_script_data_error(plain.value)


async def test_one_unmovable_abandoned_request_does_not_stop_reconciling_the_others(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Two requests left `sending` by a writer that is gone; one's created_ms is junk. Its
    move to unknown must not stop in Lua after dropping its `sending` index entry: no sweep
    would ever find it again. Both stay where a sweep or a human finds them; the other one is
    reconciled (sent again, as X never got it)."""
    settings = writer_settings(make_settings, sandbox.base_url)
    ledger = RequestLedger(redis)
    broken, fine = approved(tweet("junk created_ms")), approved(tweet("abandoned, fine"))
    for request in (broken, fine):
        await ledger.record(request, actor="moderation")
        moved = await ledger.mark_sending(request.id, actor="writer:gone")
        assert moved.ok
    await redis.hset(keys.request(broken.id), "created_ms", "x")
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.wait_states([fine.id], {S.EXECUTED}, timeout_s=10)
    assert [post.text for post in sandbox.state.content.posts.values()] == ["abandoned, fine"]
    state = await redis.hget(keys.request(broken.id), "state")
    assert state is not None
    assert await redis.zscore(keys.state_index(S(state.decode())), broken.id) is not None


async def _back_to_unknown(redis: Redis, request_id: str) -> None:
    """Put an executed request back in `unknown`, its post at X unclaimed (as a settle lost
    between X's 201 and the ledger would leave it)."""
    record = await RequestLedger(redis).get(request_id)
    assert record is not None
    assert record.result is not None
    created = await redis.hget(keys.request(request_id), "created_ms")
    assert created is not None
    await redis.hset(keys.request(request_id), "state", "unknown")
    await redis.hdel(keys.request(request_id), "result")
    await redis.zrem(keys.state_index(S.EXECUTED), request_id)
    await redis.zadd(keys.state_index(S.UNKNOWN), {request_id: int(created)})
    await redis.delete(claim_key("tweet", str(record.result["tweet_id"])))


async def test_a_post_claim_of_another_type_does_not_stop_reconciliation(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Two requests in `unknown` whose posts X has; the first one's claim key is a list
    (written by hand). Claiming it must not fail every sweep at that request: junk of another
    type holds no claim. Both are found and settled executed, each with its own post."""
    settings = writer_settings(make_settings, sandbox.base_url)
    first, second = approved(tweet("found first")), approved(tweet("found second"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(first, second)
        await writer.wait_states([first.id, second.id], {S.EXECUTED})
        posts = {}
        for request in (first, second):
            record = await writer.record(request.id)
            assert record.result is not None
            posts[request.id] = str(record.result["tweet_id"])
            await _back_to_unknown(redis, request.id)
        await redis.rpush(claim_key("tweet", posts[first.id]), "junk")
        await writer.wait_states([first.id, second.id], {S.EXECUTED}, timeout_s=10)
        for request in (first, second):
            record = await writer.record(request.id)
            assert record.result is not None
            assert str(record.result["tweet_id"]) == posts[request.id]
    assert len(sandbox.state.content.posts) == 2


async def test_settle_takes_a_post_claim_of_another_type(redis: Redis) -> None:
    """After X's 201 the settle claims the post first: a list where the claim goes must not
    stop it there (on every try), leaving the request `sending`."""
    steps, _ = steps_for(redis)
    request = approved(tweet("claimed over junk"))
    raw = encode_write_request(request)
    begun = await steps.begin(request, raw, ENDPOINT, actor="w", spend=SPEND)
    assert begun.outcome is BeginOutcome.SENDING
    await redis.rpush(claim_key("tweet", "77"), "junk")
    settled = await steps.settle_claimed(
        request.id, S.EXECUTED, from_states=[S.SENDING], actor="w", reason="created",
        result={"tweet_id": "77"}, observation=None, ticket=None, claim=PostClaim("tweet", "77"),
    )  # fmt: skip
    assert settled.moved.ok
    assert settled.holder == request.id
    assert await redis.get(claim_key("tweet", "77")) == request.id.encode()
