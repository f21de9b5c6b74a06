"""Adversary: group commit must not change how one entry's script error is classified.

The writer dead-letters a message whose script stopped on its own data (is_script_data_error)
instead of handing it back to be taken again at once, for ever. A batched entry is caught by
the batch script's pcall, whose error text lacks the `@user_script:` location Redis adds to a
lone script's error: the same junk record must be classified the same way in a batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tests.conftest import RedisServer
from tests.writer.harness import approved, tweet
from tests.writer.test_adversary_ledger_junk import WRONG_TYPES
from tests.writer.test_group_commit import executed
from tests.writer.test_group_commit_equivalence import keyspace
from tests.writer.test_send_steps import ENDPOINT, SPEND, steps_for
from twitstack.core.sections.spend import Caps, SpendSettings
from twitstack.writer.message_handler import is_script_data_error
from twitstack.writer.send_steps import (
    BeginOutcome,
    BeginResult,
    Observation,
    QueueTicket,
    SendSteps,
)
from twitstack.writes import keys
from twitstack.writes.models import WriteRequest
from twitstack.writes.queue import message_digest
from twitstack.writes.spend import Periods, spend_args, spend_keys
from twitstack.writes.wire import encode_write_request

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("junk", sorted(WRONG_TYPES))
@pytest.mark.parametrize("grouped", [False, True], ids=["alone", "batched"])
async def test_a_junk_records_script_error_is_a_script_data_error_in_a_batch_too(
    redis: Redis, junk: str, grouped: bool
) -> None:
    steps, _ = steps_for(redis)
    bad = approved(tweet(f"junk {junk}"))
    good = approved(tweet("its batch mate"))
    await WRONG_TYPES[junk](redis, bad.id)
    outcomes: dict[str, BaseException | BeginResult] = {}

    async def begin(request: WriteRequest) -> None:
        try:
            outcomes[request.id] = await steps.begin(
                request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND
            )
        except Exception as exc:
            outcomes[request.id] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(begin, bad)
        if grouped:
            tg.start_soon(begin, good)
    if grouped:
        assert steps._begins.batches == 1  # one batch of two
        assert steps._begins.items == 2
        assert isinstance(outcomes[good.id], BeginResult)
        assert outcomes[good.id].outcome is BeginOutcome.SENDING  # type: ignore[union-attr]
    error = outcomes[bad.id]
    assert isinstance(error, ResponseError), error
    assert is_script_data_error(error), str(error)


async def _begin_all(steps: SendSteps, requests: list[WriteRequest]) -> list[BeginResult]:
    return list(
        await asyncio.gather(
            *(
                steps.begin(r, encode_write_request(r), ENDPOINT, actor="w", spend=SPEND)
                for r in requests
            )
        )
    )


async def test_batches_go_on_after_redis_forgot_the_scripts(redis: Redis) -> None:
    """SCRIPT FLUSH (a restart without persistence of scripts, an operator) between batches:
    the batch scripts are loaded again, nothing is refused."""
    steps, _ = steps_for(redis)
    first = await _begin_all(steps, [approved(tweet(f"before flush {n}")) for n in range(3)])
    await redis.script_flush()
    second = await _begin_all(steps, [approved(tweet(f"after flush {n}")) for n in range(3)])
    assert [b.outcome for b in first + second] == [BeginOutcome.SENDING] * 6
    assert (steps._begins.batches, steps._begins.items) == (2, 6)  # one batch of three each


def _replayable(space: dict[bytes, tuple[str, Any, int]]) -> dict[bytes, tuple[str, Any, bool]]:
    # A lifetime is compared as present or not: the restart takes a moment.
    return {key: (kind, value, ttl >= 0) for key, (kind, value, ttl) in space.items()}


async def test_an_aof_replay_of_batches_rebuilds_the_same_keyspace(
    make_redis_server: Callable[..., RedisServer],
) -> None:
    """What the shim writes out (one HSET, ZADD, ZREM, HDEL per key at the end) is what Redis
    logs: a restart from the append-only file holds exactly the keyspace the batches left."""
    server = make_redis_server(appendonly=True)
    redis = Redis.from_url(server.url)
    try:
        steps, _ = steps_for(redis)
        requests = [approved(tweet(f"aof {n}")) for n in range(6)]
        raws = [encode_write_request(r) for r in requests]
        processing = keys.processing_list("w")
        await redis.rpush(processing, *raws)
        await redis.hset(keys.CRASH_COUNTS, mapping={message_digest(raw): 1 for raw in raws})
        begun = await _begin_all(steps, requests)
        assert [b.outcome for b in begun] == [BeginOutcome.SENDING] * 6
        reset = str(int(time.time()) + 900)
        seen = Observation(
            "default",
            ENDPOINT,
            {"x-rate-limit-limit": "50", "x-rate-limit-remaining": "40",
             "x-rate-limit-reset": reset},
        )  # fmt: skip
        await asyncio.gather(
            *(
                executed(
                    steps,
                    r.id,
                    result={"id": str(n)},
                    observation=seen,
                    ticket=QueueTicket(processing, raw),
                )
                for n, (r, raw) in enumerate(zip(requests, raws, strict=True))
            )
        )
        assert steps._begins.items == steps._settles.items == 6
        assert steps._settles.batches < 6  # some settles went together
        before = _replayable(await keyspace(redis))
        assert await redis.llen(processing) == 0
        server.stop(kill=True)
        server.start()
        await redis.aclose()
        redis = Redis.from_url(server.url)
        after = _replayable(await keyspace(redis))
        assert after == before
    finally:
        await redis.aclose()


@pytest.mark.parametrize("limit", ["rate", "spend"])
async def test_two_replicas_batching_begins_grant_exactly_what_is_left(
    redis: Redis, redis_url: str, limit: str
) -> None:
    """Two writers' batches interleave on one Redis, each batch holding the shared budget hash
    and spend rollup in memory for its own call only: exactly the room left is granted, once."""
    other = Redis.from_url(redis_url)
    replicas = [steps_for(redis)[0], steps_for(other)[0]]
    spend = SPEND
    if limit == "rate":
        await redis.hset(
            keys.rate_limit_budgets("default", ENDPOINT),
            mapping={"window.limit": 50, "window.remaining": 7, "window.reset": 1900, "layout": 2},
        )
    else:
        periods = Periods.at(1_000.0)
        caps = SpendSettings(total=Caps(daily_usd=7 * 0.015))
        spend = (
            spend_keys("default", periods),
            spend_args(caps, "default", "post", 15000, periods),
        )
    requests = [approved(tweet(f"race {limit} {n}")) for n in range(40)]
    outcomes: list[BeginOutcome] = []

    async def one(n: int) -> None:
        request = requests[n]
        begun = await replicas[n % 2].begin(
            request, encode_write_request(request), ENDPOINT, actor=f"w{n % 2}", spend=spend
        )
        outcomes.append(begun.outcome)

    try:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for n in range(40):
                    tg.start_soon(one, n)
    finally:
        await other.aclose()
    held = BeginOutcome.BLOCKED if limit == "rate" else BeginOutcome.BUDGET
    assert sorted(outcomes) == sorted([BeginOutcome.SENDING] * 7 + [held] * 33)
    assert all(r._begins.batches < 20 for r in replicas)  # batches really formed
    states = [await redis.hget(keys.request(r.id), "state") for r in requests]
    assert states.count(b"sending") == 7
