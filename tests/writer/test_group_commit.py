"""Group commit of the writer's two steps: how calls are coalesced, and what each caller sees.

The batch scripts' equivalence with one call per request is test_group_commit_equivalence.py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.conftest import RedisServer
from tests.writer.harness import approved, tweet
from tests.writer.test_send_steps import ENDPOINT, SPEND
from twitstack.core.redis import create_redis
from twitstack.writer.group_commit import GroupCommit
from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writer.send_steps import BeginOutcome, Observation, QueueTicket, SendSteps
from twitstack.writes import keys, scripts
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.ledger_types import TransitionResult
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.wire import encode_write_request

pytestmark = pytest.mark.anyio


def executed(
    steps: SendSteps,
    request_id: str,
    *,
    result: dict[str, Any] | None = None,
    observation: Observation | None = None,
    ticket: QueueTicket | None = None,
) -> Awaitable[tuple[TransitionResult, dict[str, int]]]:
    """`steps.settle` of a request X created: sending -> executed."""
    return steps.settle(
        request_id, S.EXECUTED, from_states=[S.SENDING], actor="w", reason="created",
        result=result, observation=observation, ticket=ticket,
    )  # fmt: skip


class Recorder:
    """A batched call that records its batches; `gate` holds a call in flight until set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def __call__(self, items: list[int]) -> Sequence[int | BaseException]:
        self.batches.append(items)
        self.entered.set()
        await self.gate.wait()
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


async def test_a_lone_call_goes_out_at_once_alone() -> None:
    run = Recorder()
    group: GroupCommit[int, int] = GroupCommit(run, max_batch=32)
    assert await group.submit(1) == 10
    assert await group.submit(2) == 20
    assert run.batches == [[1], [2]]


async def test_calls_arriving_during_a_flush_go_together_each_with_its_own_answer() -> None:
    run = Recorder()
    run.gate.clear()
    group: GroupCommit[int, int] = GroupCommit(run, max_batch=4)
    first = asyncio.ensure_future(group.submit(1))
    await run.entered.wait()  # the first batch is in flight
    later = [asyncio.ensure_future(group.submit(n)) for n in range(2, 8)]
    await asyncio.sleep(0)
    assert run.batches == [[1]]  # nothing waits for a timer, nothing joins a call in flight
    run.gate.set()
    assert await first == 10
    assert [await f for f in later] == [n * 10 for n in range(2, 8)]
    assert run.batches == [[1], [2, 3, 4, 5], [6, 7]]  # at most max_batch per call


async def test_one_item_error_is_that_callers_alone() -> None:
    run = Recorder()
    group: GroupCommit[int, int] = GroupCommit(run, max_batch=8)
    results = await asyncio.gather(*(group.submit(n) for n in (1, -2, 3)), return_exceptions=True)
    assert run.batches == [[1, -2, 3]]  # all three were waiting when the flush began
    assert results[0] == 10
    assert results[2] == 30
    assert isinstance(results[1], ValueError)
    assert str(results[1]) == "bad -2"


async def test_an_error_of_the_batched_call_reaches_every_caller_in_it() -> None:
    async def broken(items: list[int]) -> Sequence[int]:
        raise RedisConnectionError("gone")

    group: GroupCommit[int, int] = GroupCommit(broken, max_batch=8)
    results = await asyncio.gather(*(group.submit(n) for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, RedisConnectionError) and str(r) == "gone" for r in results)
    # Each caller raises its own copy (its traceback is its own).
    assert len({id(r) for r in results}) == 5
    assert await asyncio.gather(group.submit(9), return_exceptions=True) != [90]


async def test_a_caller_cancelled_before_its_batch_goes_out_is_left_out() -> None:
    run = Recorder()
    run.gate.clear()
    group: GroupCommit[int, int] = GroupCommit(run, max_batch=8)
    first = asyncio.ensure_future(group.submit(1))
    await run.entered.wait()
    cancelled = asyncio.ensure_future(group.submit(2))
    kept = asyncio.ensure_future(group.submit(3))
    await asyncio.sleep(0)
    cancelled.cancel()
    run.gate.set()
    assert (await first, await kept) == (10, 30)
    assert run.batches == [[1], [3]]


async def test_concurrent_begins_and_settles_share_one_call_each(redis: Redis) -> None:
    """The writer's steps coalesce: N workers at once cost one EVALSHA per step, not N."""
    ledger = RequestLedger(redis)
    told: list[tuple[str, int]] = []
    steps = SendSteps(
        redis,
        ledger,
        RateLimitBudgets(redis, clock=lambda: 1_000.0),
        on_batch=lambda step, size: told.append((step, size)),
    )
    requests = [approved(tweet(f"together {n}")) for n in range(6)]
    processing = keys.processing_list("w")
    raws = [encode_write_request(r) for r in requests]
    await redis.rpush(processing, *raws)
    for name in ("begin_sending_batch", "settle_sending_batch"):
        await redis.script_load(scripts.lua_source(name))
    before = (await redis.info("commandstats")).get("cmdstat_evalsha", {"calls": 0})["calls"]
    begun = await asyncio.gather(
        *(
            steps.begin(r, raw, ENDPOINT, actor="w", spend=SPEND)
            for r, raw in zip(requests, raws, strict=True)
        )
    )
    assert [b.outcome for b in begun] == [BeginOutcome.SENDING] * 6
    settled = await asyncio.gather(
        *(
            executed(steps, r.id, ticket=QueueTicket(processing, raw))
            for r, raw in zip(requests, raws, strict=True)
        )
    )
    assert all(moved.ok for moved, _ in settled)
    after = (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"]
    assert after - before == 2  # one batch per step
    assert await redis.llen(processing) == 0
    assert told == [("begin", 6), ("settle", 6)]  # what writer_group_commit_*_total count


async def test_a_batch_entry_error_is_raised_to_its_caller_as_redis_would(redis: Redis) -> None:
    """A record of another type (junk written by hand) fails its own begin; the others send."""
    ledger = RequestLedger(redis)
    steps = SendSteps(redis, ledger, RateLimitBudgets(redis, clock=lambda: 1_000.0))
    requests = [approved(tweet(f"entry {n}")) for n in range(3)]
    await redis.set(keys.REQUEST_PREFIX + requests[1].id, "junk")
    begun = await asyncio.gather(
        *(
            steps.begin(r, encode_write_request(r), ENDPOINT, actor="w", spend=SPEND)
            for r in requests
        ),
        return_exceptions=True,
    )
    assert isinstance(begun[1], ResponseError)
    assert str(begun[1]).startswith("WRONGTYPE")
    outcomes = [b.outcome for b in begun if not isinstance(b, BaseException)]
    assert outcomes == [BeginOutcome.SENDING] * 2


class DropProxy:
    """A TCP relay to Redis that drops the connection carrying `marker` (a script's sha):
    before Redis sees that command (`after` False) or after Redis ran it, before its reply."""

    def __init__(
        self, upstream_port: int, marker: bytes, *, after: bool, once: bool = False
    ) -> None:
        self.upstream_port = upstream_port
        self.marker = marker
        self.after = after
        self.once = once  # drop the first connection carrying it only; relay later ones
        self.drops = 0
        self.seen = 0  # commands carrying `marker` that reached the relay
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        dropping = asyncio.Event()

        def close() -> None:
            writer.close()
            up_writer.close()

        async def to_redis() -> None:
            tail = b""
            while data := await reader.read(65536):
                if self.marker in tail + data:
                    self.seen += 1
                if self.marker in tail + data and not (self.once and self.drops):
                    self.drops += 1
                    if self.after:
                        dropping.set()
                        up_writer.write(data)
                        await up_writer.drain()
                    else:
                        close()
                    return
                tail = data[-len(self.marker) :]
                up_writer.write(data)
                await up_writer.drain()
            close()

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                if dropping.is_set():
                    close()
                    return
                writer.write(data)
                await writer.drain()
            close()

        await asyncio.gather(to_redis(), to_client(), return_exceptions=True)


@pytest.mark.parametrize("after", [False, True], ids=["before_redis_ran_it", "after"])
async def test_a_connection_drop_during_a_batch_reaches_every_caller_and_acks_only_settled(
    make_redis_server: Callable[..., RedisServer], after: bool
) -> None:
    server = make_redis_server()
    direct = Redis.from_url(server.url)
    # Loaded first: a dropped NOSCRIPT reply would never let the client load it.
    sha = (await direct.script_load(scripts.lua_source("settle_sending_batch"))).encode()
    proxy = DropProxy(server.port, sha, after=after)
    await proxy.start()
    # The writer's own retry settings are beside the point: every try of the batch is dropped.
    client = Redis(host="127.0.0.1", port=proxy.port)
    try:
        steps = SendSteps(
            client, RequestLedger(client), RateLimitBudgets(client, clock=lambda: 1e3)
        )
        requests = [approved(tweet(f"dropped {n}")) for n in range(5)]
        raws = [encode_write_request(r) for r in requests]
        processing = keys.processing_list("w")
        await direct.rpush(processing, *raws)
        for request, raw in zip(
            requests, raws, strict=True
        ):  # one at a time: no batch, nothing dropped
            begun = await steps.begin(request, raw, ENDPOINT, actor="w", spend=SPEND)
            assert begun.outcome is BeginOutcome.SENDING
        results = await asyncio.gather(
            *(
                executed(steps, r.id, ticket=QueueTicket(processing, raw))
                for r, raw in zip(requests, raws, strict=True)
            ),
            return_exceptions=True,
        )
        assert proxy.drops >= 1  # the batch was sent (and dropped), not five single calls
        assert all(isinstance(r, RedisConnectionError | RedisTimeoutError) for r in results), (
            results
        )
        left = await direct.lrange(processing, 0, -1)
        records = await RequestLedger(direct).get_many([r.id for r in requests])
        for raw, record in zip(raws, records, strict=True):
            assert record is not None
            acked = raw not in left
            assert acked == (record.state is S.EXECUTED), (acked, record.state)
            # The batch is one atomic call: all of it ran, or none.
            assert acked is after
    finally:
        await proxy.stop()
        await client.aclose()
        await direct.aclose()


async def test_a_batch_whose_reply_was_lost_is_not_sent_again(
    make_redis_server: Callable[..., RedisServer],
) -> None:
    """Through the writer's own client (which retries a command whose connection failed): a
    settle batch that Redis ran, whose reply was lost, reaches its callers as a connection
    error and is not sent again. Sent again, it would give the in-flight reservations back a
    second time (5 reserved, 3 settled: 2 still in flight, not 0) and answer `state_mismatch`
    for moves that were made."""
    server = make_redis_server()
    direct = Redis.from_url(server.url)
    sha = (await direct.script_load(scripts.lua_source("settle_sending_batch"))).encode()
    proxy = DropProxy(server.port, sha, after=True, once=True)
    await proxy.start()
    client = create_redis(f"redis://127.0.0.1:{proxy.port}")
    try:
        steps = SendSteps(
            client, RequestLedger(client), RateLimitBudgets(client, clock=lambda: 1e3)
        )
        requests = [approved(tweet(f"lost reply {n}")) for n in range(5)]
        raws = [encode_write_request(r) for r in requests]
        for request, raw in zip(requests, raws, strict=True):
            begun = await steps.begin(request, raw, ENDPOINT, actor="w", spend=SPEND)
            assert begun.outcome is BeginOutcome.SENDING
        budget = keys.rate_limit_budgets("default", ENDPOINT)
        assert await direct.hget(budget, "pending") == b"5"
        seen = Observation("default", ENDPOINT, {})
        results = await asyncio.gather(
            *(executed(steps, r.id, observation=seen) for r in requests[:3]),
            return_exceptions=True,
        )
        assert (proxy.drops, proxy.seen) == (1, 1), "the batch was sent again"
        assert all(isinstance(r, RedisConnectionError | RedisTimeoutError) for r in results), (
            results
        )
        records = await RequestLedger(direct).get_many([r.id for r in requests])
        assert [r.state for r in records] == [S.EXECUTED] * 3 + [S.SENDING] * 2
        assert await direct.hget(budget, "pending") == b"2"
    finally:
        await proxy.stop()
        await client.aclose()
        await direct.aclose()
