"""The drafts outbox: drafts survive a crash after their tweets commit, and re-push the same ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.scraper.test_store import tweet
from twitstack.core.sections.scraper import DraftRuleSpec
from twitstack.core.service import ServiceContext
from twitstack.scraper.db import open_database, transaction
from twitstack.scraper.jobs import Job
from twitstack.scraper.outbox import DraftOutbox, OutboxMessage, insert_messages
from twitstack.scraper.service import build_scraper_service
from twitstack.scraper.store import TweetStore
from twitstack.writes.keys import WRITE_QUEUE
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.wire import decode_write_request, encode_write_request

pytestmark = pytest.mark.anyio
_RULE = DraftRuleSpec(
    template="Thanks @{{ tweet.author }}!", as_account="team", match_any=("python",),
    max_per_run=1000,
)  # fmt: skip


class _CrashError(Exception):
    """Stands in for the process dying at a chosen point."""


def _job() -> Job:
    return Job(
        name="watch", kind="search", target="python", interval_s=60.0, limit=1000,
        proxy_group=None, draft=_RULE,
    )  # fmt: skip


def _message(request_id: str, job: str = "watch") -> OutboxMessage:
    request = WriteRequest(action=WriteAction.TWEET, payload={"text": "hi"}, id=request_id)
    return OutboxMessage(request_id, job, 1, encode_write_request(request), refusable=False)


async def _queued_ids(redis: Redis) -> list[str]:
    return [decode_write_request(m).id for m in await redis.lrange(WRITE_QUEUE, 0, -1)]


async def test_a_crash_between_commit_and_push_loses_no_draft(
    fake_x: Any, make_scraper: Any, redis: Redis
) -> None:
    """Drafts committed with the run's tweets but never pushed are pushed when the next run
    starts (it finds nothing new to draft), each request id exactly once."""
    async with make_scraper() as s:
        stored = s.store.upsert

        async def upsert_then_die(*args: Any, **kwargs: Any) -> Any:
            await stored(*args, **kwargs)
            raise _CrashError("killed after the commit, before the push")

        s.store.upsert = upsert_then_die  # type: ignore[method-assign]
        with anyio.fail_after(20), pytest.raises(_CrashError):
            await s.runner.run(_job())
        s.store.upsert = stored  # type: ignore[method-assign]
        assert await redis.llen(WRITE_QUEUE) == 0
        stranded = [m.request_id for m in await s.runner.outbox.pending()]
        assert stranded

        with anyio.fail_after(30):
            outcome = await s.runner.run(_job())
        assert (outcome.status, outcome.new, outcome.drafts) == ("ok", 0, 0)
        queued = await _queued_ids(redis)
        assert queued == stranded
        assert len(set(queued)) == len(queued)
        assert await s.runner.outbox.pending() == []
        sources = [decode_write_request(m).source for m in await redis.lrange(WRITE_QUEUE, 0, -1)]
        source_ids = [src["id"] for src in sources if src is not None]
        assert len(source_ids) == len(set(source_ids)) == len(queued)
        drafts = s.metrics.drafts.labels(scrape_job="watch", refusable="true")._value.get()
        drafts += s.metrics.drafts.labels(scrape_job="watch", refusable="false")._value.get()
        assert drafts == len(queued)


async def test_a_cancel_between_push_and_delete_re_pushes_identical_messages(
    fake_x: Any, make_scraper: Any, redis: Redis
) -> None:
    """Cancelled after RPUSH but before the outbox rows are deleted, the next run pushes the
    same bytes again: same request ids, which the writer's ledger deduplicates."""
    async with make_scraper(batch_size=20) as s:
        outbox = s.runner.outbox
        forget = outbox._forget
        with anyio.fail_after(20), anyio.CancelScope() as scope:

            async def cancel_instead(seqs: list[int]) -> None:
                scope.cancel()
                await anyio.sleep_forever()

            outbox._forget = cancel_instead  # type: ignore[method-assign]
            await s.runner.run(_job())
        assert scope.cancelled_caught
        outbox._forget = forget  # type: ignore[method-assign]
        first = await redis.lrange(WRITE_QUEUE, 0, -1)
        assert first
        assert [m.message for m in await outbox.pending()] == first

        with anyio.fail_after(30):
            await s.runner.run(_job())
        again = await redis.lrange(WRITE_QUEUE, 0, -1)
        assert again[: len(first)] == first
        assert again[len(first) : 2 * len(first)] == first
        ids = [decode_write_request(m).id for m in first]
        assert [decode_write_request(m).id for m in again[len(first) : 2 * len(first)]] == ids
        assert await outbox.pending() == []


async def test_drafts_roll_back_with_their_tweets(tmp_path: Path) -> None:
    """A failure inside the upsert's transaction leaves neither the tweets nor their drafts."""
    async with open_database(tmp_path / "s.db") as conn:
        store = TweetStore(conn)

        def broken_drafts(new: list[Any]) -> list[OutboxMessage]:
            raise _CrashError("template engine died")

        with pytest.raises(_CrashError):
            await store.upsert([tweet(1)], job="watch", run_id=1, now=1.0, drafts=broken_drafts)
        assert await store.count() == 0
        result = await store.upsert(
            [tweet(1), tweet(2)], job="watch", run_id=1, now=1.0,
            drafts=lambda new: [_message(f"r{t.id}") for t in new],
        )  # fmt: skip
        assert result.drafts == 2
        async with conn.execute("SELECT request_id FROM draft_outbox ORDER BY seq") as cur:
            assert [r[0] for r in await cur.fetchall()] == ["r1", "r2"]


async def test_redis_down_keeps_drafts_for_the_next_delivery(
    tmp_path: Path, redis: Redis, refused_port: int
) -> None:
    """Delivery to an unreachable Redis raises and deletes nothing; a later one pushes all."""
    async with open_database(tmp_path / "s.db") as conn:
        async with transaction(conn):
            await insert_messages(conn, [_message("a"), _message("b", job="other")], 1.0)
        down = Redis(host="127.0.0.1", port=refused_port, socket_connect_timeout=1)
        with anyio.fail_after(10), pytest.raises(RedisError):
            await DraftOutbox(conn, down).deliver()
        await down.aclose()
        outbox = DraftOutbox(conn, redis)
        assert [m.request_id for m in await outbox.pending()] == ["a", "b"]
        assert await outbox.deliver("other") == 1
        assert await _queued_ids(redis) == ["b"]
        assert await outbox.deliver() == 1
        assert await _queued_ids(redis) == ["b", "a"]
        assert await outbox.pending() == []


async def test_service_start_pushes_what_a_dead_process_left(
    make_settings: Any, redis: Redis, tmp_path: Path
) -> None:
    """Drafts left in the outbox are on write_queue by the time the service reports started."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    async with open_database(data_dir / "scraper.db") as conn, transaction(conn):
        await insert_messages(conn, [_message("left-1"), _message("left-2", job="gone")], 1.0)
    settings = make_settings(data_dir=data_dir, proxy_file=tmp_path / "none.txt")
    service = build_scraper_service(
        ServiceContext(settings=settings, redis=redis, data_dir=data_dir)
    )
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            await tg.start(service.run)
            queued = await _queued_ids(redis)
            service.request_stop()
    assert queued == ["left-1", "left-2"]
    async with open_database(data_dir / "scraper.db") as conn:
        assert await DraftOutbox(conn, redis).pending() == []
