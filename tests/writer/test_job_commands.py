"""The Redis commands one approved job costs the writer, counted as INFO commandstats counts them.

Commands a Lua script runs count too. The figure is exact (commands per job are deterministic,
unlike their time): a change that adds a command to the hot path fails here and must say why.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import SECRETS, approved, tweet, writer_settings
from twitstack.core.config import Settings
from twitstack.core.sections.spend import SpendSettings
from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writer.send_steps import (
    BeginOutcome,
    Observation,
    PostClaim,
    QueueTicket,
    SendSteps,
    Settled,
)
from twitstack.writer.service import WriterService
from twitstack.writer.xapi_client import XApiClient
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteRequest
from twitstack.writes.queue import ReliableQueue
from twitstack.writes.scripts import lua_source
from twitstack.writes.spend import Periods, spend_args, spend_keys
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
pytestmark = pytest.mark.anyio
ENDPOINT = "tweets.create"
_NOW = Periods.at(1_000.0)

# One signed tweet, taken and executed: BLMOVE, then two scripts (begin_sending, settle_sending).
# Ledger and queue, inside them: begin = EXISTS (hash and tombstone at once), SET NX GET (spend
# the approval's nonce), ZADD (index: sending), HSET (the record, already sending), XADD x2
# (received, sending); settle = SET NX GET (post claim), HMGET (compare-and-set read), ZREM +
# ZADD (index: sending -> executed), HSET, SET (tombstone), SET XX KEEPTTL (the spent approval
# now names the final state: no re-send of a finished record, whatever is done to its hash and
# tombstone), EXPIRE (retention), ZADD (retention index), XADD (executed), LREM + HDEL (ack).
# Rate-limit budget and spend ledger: begin = HMGET + HSET of the budget hash (windows and
# in-flight count), TIME (the in-flight count's lapse, `pending.until`, is stamped on Redis's
# clock, not the replica's, whose skew would let it void the others' reservations), HMGET +
# HSET of the day and the month rollups (spend, raised caps, hold notes); settle = HMGET + HSET
# of the budget hash (the windows X's rate-limit headers report and the in-flight count; the
# fake X sends them, as X does; the bench's minimal X does not).
SIGNED_JOB = Counter(
    {
        "blmove": 1,
        "evalsha": 2,
        "exists": 1,
        "hmget": 5,
        "set": 4,
        "zadd": 3,
        "hset": 6,
        "xadd": 3,
        "zrem": 1,
        "expire": 1,
        "lrem": 1,
        "hdel": 1,
        "time": 1,
    }
)


async def _calls(redis: Redis) -> Counter[str]:
    stats: dict[str, Any] = await redis.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


async def test_one_signed_job_costs_a_known_set_of_commands(
    make_redis_server: Callable[..., RedisServer],
    make_settings: Callable[..., Settings],
    sandbox: RunningSandbox,
) -> None:
    """The writer's per-message path (take, begin, POST, settle) with no loop running beside it."""
    server = make_redis_server()
    redis = Redis.from_url(server.url)
    settings = writer_settings(make_settings, sandbox.base_url, concurrency=1)

    async def lookup(name: str) -> str | None:
        return SECRETS.get(name)

    service = WriterService(settings, redis, secret=lookup, clock=sandbox.state.clock.now)
    try:
        async with httpx.AsyncClient() as http:
            client = XApiClient(http, base_url=sandbox.base_url)
            # The pieces service.run() wires up, minus its background loops and idle takes,
            # whose commands would land among the job's.
            service._build(client)
            await service._start()
            intake = service._intake_for(client)
            ledger = RequestLedger(redis)
            jobs = [approved(tweet(f"job {n}")) for n in range(2)]

            async def run_one() -> Counter[str]:
                before = await _calls(redis)
                taken = await service.queue.take(1.0)
                assert taken is not None
                await service._messages.handle(taken, intake)
                after = await _calls(redis)
                spent = after - before
                del spent["info"]
                return spent

            # The first job also loads the account's token into the worker's cache.
            for job in jobs:
                await redis.rpush(keys.WRITE_QUEUE, encode_write_request(job))
            await run_one()
            spent = await run_one()
            records = await ledger.get_many([job.id for job in jobs])
            assert [record.state for record in records] == [S.EXECUTED, S.EXECUTED]
            assert dict(spent) == dict(SIGNED_JOB), sorted(spent.items())
            assert spent.total() == 30
    finally:
        await redis.aclose()


# A busy writer (workers taking jobs faster than one call returns) group-commits each step:
# BATCH jobs that begin (and later settle) together cost one EVALSHA per step, and the keys
# every job touches are read and written once per batch (lua/group_commit.lua). Per job, the
# request's own keys: BLMOVE; begin = EXISTS, HMGET (the moderator's record), SET NX GET (the
# approval's nonce), HSET, XADD (sending); settle = SET NX GET (post claim), HMGET, HSET, SET
# (tombstone), SET XX KEEPTTL, EXPIRE, XADD, LREM (ack): 14. Per batch: begin = EVALSHA, HMGET +
# HSET of the budget hash, TIME, HMGET + HSET of the day and of the month rollup, and for each
# of the approved index, the schedule (a move out of approved cancels a promotion) and the
# sending index a first ZREM/ZADD that runs (a key of another type fails it as it always did)
# then one variadic ZREM/ZADD of the rest: 14; settle = EVALSHA, HMGET + HSET of the budget hash,
# the same two each for the sending index (ZREM), the executed index and the retention index
# (ZADD), and the crash counts (HDEL): 11. 14 + 25 / BATCH per job: 15.6 for 16.
BATCH = 16
BATCHED_JOBS = Counter(
    {
        "blmove": BATCH,
        "evalsha": 2,
        "exists": BATCH,
        "hmget": 2 * BATCH + 4,
        "set": 4 * BATCH,
        "hset": 2 * BATCH + 4,
        "xadd": 2 * BATCH,
        "expire": BATCH,
        "lrem": BATCH,
        "time": 1,
        "zrem": 6,
        "zadd": 6,
        "hdel": 2,
    }
)


async def test_a_batch_of_moderated_jobs_costs_a_known_set_of_commands(
    make_redis_server: Callable[..., RedisServer],
) -> None:
    """BATCH moderation-approved jobs taken, begun together, posted, settled together."""
    server = make_redis_server()
    redis = Redis.from_url(server.url)
    try:
        ledger = RequestLedger(redis)
        budgets = RateLimitBudgets(redis, clock=lambda: 1_000.0)
        steps = SendSteps(redis, ledger, budgets)
        queue = ReliableQueue(redis, "w")
        jobs = [approved(tweet(f"batched {n}")) for n in range(BATCH + 1)]
        for job in jobs:
            # What a moderator's approve leaves: the record, approved, and its message queued.
            await ledger.record(job, actor="moderation")
            await redis.rpush(keys.WRITE_QUEUE, encode_write_request(job))
        for name in ("begin_sending_batch", "settle_sending_batch"):
            await redis.script_load(lua_source(name))
        spend = (
            spend_keys("default", _NOW),
            spend_args(SpendSettings(), "default", "post", 15000, _NOW),
        )
        headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "42",
                   "x-rate-limit-reset": "1900"}  # fmt: skip

        async def settle(n: int, job: WriteRequest, raw: bytes | None) -> Settled:
            return await steps.settle_claimed(
                job.id, S.EXECUTED, from_states=[S.SENDING], actor="w", reason="created",
                result={"tweet_id": str(n)}, observation=Observation("default", ENDPOINT, headers),
                ticket=QueueTicket(keys.processing_list("w"), raw or b""),
                claim=PostClaim("tweet", str(n)),
            )  # fmt: skip

        # One job first, alone: the budget hash and this period's rollups exist from then on
        # (their first write sets their lifetime), as on any writer that has sent before.
        first, jobs = jobs[0], jobs[1:]
        raw = await queue.take(1.0)
        await steps.begin(first, raw or b"", ENDPOINT, actor="w", spend=spend)
        await settle(-1, first, raw)
        before = await _calls(redis)
        taken = [await queue.take(1.0) for _ in jobs]
        begun = await asyncio.gather(
            *(
                steps.begin(job, raw or b"", ENDPOINT, actor="w", spend=spend)
                for job, raw in zip(jobs, taken, strict=True)
            )
        )
        assert [b.outcome for b in begun] == [BeginOutcome.SENDING] * BATCH
        settled = await asyncio.gather(
            *(
                steps.settle_claimed(
                    job.id,
                    S.EXECUTED,
                    from_states=[S.SENDING],
                    actor="w",
                    reason="created",
                    result={"tweet_id": str(n)},
                    observation=Observation("default", ENDPOINT, headers),
                    ticket=QueueTicket(keys.processing_list("w"), raw or b""),
                    claim=PostClaim("tweet", str(n)),
                )
                for n, (job, raw) in enumerate(zip(jobs, taken, strict=True))
            )
        )
        spent = await _calls(redis) - before
        del spent["info"]
        assert all(s.moved.ok for s in settled)
        assert (steps._begins.batches, steps._settles.batches) == (2, 2)  # the first job's, ours
        assert dict(spent) == dict(BATCHED_JOBS), sorted(spent.items())
        # 15.6 per job, against 32 one at a time on this path.
        assert spent.total() == 14 * BATCH + 14 + 11
    finally:
        await redis.aclose()
