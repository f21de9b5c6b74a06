"""Ingesting the ledger's event stream: resumable, nothing missed, nothing doubled."""

from __future__ import annotations

import anyio
import pytest

from tests.moderation.harness import Harness
from twitstack.core.metrics import new_registry
from twitstack.moderation.history import HistoryIngester
from twitstack.moderation.metrics import ModerationMetrics
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest

pytestmark = pytest.mark.anyio


async def _record(mod: Harness, n: int) -> list[str]:
    ids = []
    for i in range(n):
        request = WriteRequest(action=WriteAction.TWEET, payload={"text": f"t{i}"}, author="x")
        await mod.deps.decisions.ledger.record(request, actor="x")
        ids.append(request.id)
    return ids


async def test_resumes_from_the_stored_cursor_without_gaps_or_doubles(mod: Harness) -> None:
    await mod.deps.history.catch_up()
    ids = await _record(mod, 25)
    small = HistoryIngester(
        mod.deps.db,
        mod.redis,
        mod.deps.decisions.ledger,
        ModerationMetrics(new_registry()),
        batch=10,
    )
    assert await small.sync_once() == 10
    # "Restart": a new ingester over the same store continues where the cursor points.
    restarted = HistoryIngester(
        mod.deps.db,
        mod.redis,
        mod.deps.decisions.ledger,
        ModerationMetrics(new_registry()),
        batch=7,
    )
    assert await restarted.catch_up() == 15
    assert await restarted.catch_up() == 0
    stream_length = await mod.redis.xlen(keys.EVENTS)
    stored = await mod.deps.db.fetchval("SELECT count(*) FROM request_events")
    assert stored == stream_length == 25
    rows = await mod.deps.db.fetchall("SELECT id FROM requests")
    assert sorted(r[0] for r in rows) == sorted(ids)


async def test_reingesting_a_batch_changes_nothing(mod: Harness) -> None:
    """A crash after reading but before committing re-reads the batch: no double rows."""
    await _record(mod, 5)
    await mod.deps.history.catch_up()
    await mod.deps.db.execute("UPDATE ingest_cursor SET last_id = '0-0'")
    assert await mod.deps.history.catch_up() == 5
    assert await mod.deps.db.fetchval("SELECT count(*) FROM request_events") == 5
    assert await mod.deps.db.fetchval("SELECT count(*) FROM requests") == 5


async def test_first_start_rebuilds_from_the_state_indexes_when_the_stream_was_trimmed(
    mod: Harness,
) -> None:
    ids = await _record(mod, 4)
    await mod.redis.xtrim(keys.EVENTS, maxlen=0)
    await mod.deps.history.prepare()
    rows = await mod.deps.db.fetchall("SELECT id, state FROM requests")
    assert sorted((r[0], r[1]) for r in rows) == sorted((i, "pending") for i in ids)


async def test_projection_follows_state_changes(mod: Harness) -> None:
    [request_id] = await _record(mod, 1)
    await mod.deps.history.catch_up()
    await mod.deps.decisions.ledger.transition(
        request_id,
        ModerationStatus.REJECTED,
        from_states=[ModerationStatus.PENDING],
        actor="mo",
        reason="no",
    )
    await mod.deps.history.catch_up()
    row = await mod.deps.db.fetchone(
        "SELECT state, last_reason FROM requests WHERE id = ?", (request_id,)
    )
    assert row is not None
    assert (row["state"], row["last_reason"]) == ("rejected", "no")


async def test_state_counts_match_the_rows_through_transitions(mod: Harness) -> None:
    """The trigger-kept counts equal count(*) per state after inserts, moves and re-ingest."""
    ids = await _record(mod, 6)
    await mod.deps.history.catch_up()
    for request_id in ids[:2]:
        await mod.deps.decisions.ledger.transition(
            request_id,
            ModerationStatus.REJECTED,
            from_states=[ModerationStatus.PENDING],
            actor="mo",
            reason="no",
        )
    await mod.deps.history.catch_up()
    await mod.deps.db.execute("UPDATE ingest_cursor SET last_id = '0-0'")
    await mod.deps.history.catch_up()
    actual = dict(
        (r[0], r[1])
        for r in await mod.deps.db.fetchall("SELECT state, count(*) FROM requests GROUP BY state")
    )
    kept = dict(
        (r[0], r[1])
        for r in await mod.deps.db.fetchall("SELECT state, n FROM state_counts WHERE n")
    )
    assert kept == actual == {"pending": 4, "rejected": 2}


async def test_catch_up_does_not_wait_for_the_background_poll(mod: Harness) -> None:
    """An approval's catch_up runs while the ingest loop's blocking read waits for events."""
    await _record(mod, 2)
    history = mod.deps.history
    polled = anyio.Event()

    async def background_poll() -> None:
        await history.catch_up()
        await history.sync_once(block_ms=60_000)  # nothing new: it waits the whole minute
        polled.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(background_poll)
        await anyio.wait_all_tasks_blocked()
        # Bounded far below the poll's minute: it used to wait for the poll's lock.
        with anyio.fail_after(20):
            assert await history.catch_up() == 0
        assert not polled.is_set()
        tg.cancel_scope.cancel()
