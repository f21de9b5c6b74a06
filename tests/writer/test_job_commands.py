"""The Redis commands one approved job costs the writer, counted as INFO commandstats counts them.

Commands a Lua script runs count too. The figure is exact (commands per job are deterministic,
unlike their time): a change that adds a command to the hot path fails here and must say why.
"""

from __future__ import annotations

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
from twitstack.writer.service import WriterService
from twitstack.writer.xapi_client import XApiClient
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
pytestmark = pytest.mark.anyio

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
