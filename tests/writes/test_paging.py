"""Listing by state: counts, offset pages and cursor pages in both directions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from twitstack.writes.errors import WriteRequestError
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.models import WriteAction, WriteRequest

pytestmark = pytest.mark.anyio
T0 = datetime(2025, 7, 14, tzinfo=UTC)


async def fill(ledger: RequestLedger, count: int, *, ties: bool = False) -> list[str]:
    """Record `count` pending tweets, oldest first; with ties, pairs share a timestamp."""
    ids = []
    for index in range(count):
        created = T0 + timedelta(seconds=index // 2 if ties else index)
        request = WriteRequest(
            action=WriteAction.TWEET, payload={"text": "x"}, id=f"r{index:04d}", created_at=created
        )
        await ledger.record(request, actor="t")
        ids.append(request.id)
    return ids


async def walk(ledger: RequestLedger, *, newest_first: bool, limit: int) -> list[list[str]]:
    """Every page from the first, following next_cursor (bounded)."""
    pages = []
    page = await ledger.page(S.PENDING, limit=limit, newest_first=newest_first)
    for _ in range(100):
        pages.append([r.request.id for r in page.records])
        if page.next_cursor is None:
            break
        page = await ledger.page(S.PENDING, limit=limit, cursor=page.next_cursor)
    return pages


async def test_counts_cover_every_state(redis: Redis) -> None:
    """counts() lists all states, with the right numbers."""
    ledger = RequestLedger(redis)
    await fill(ledger, 3)
    await ledger.transition("r0000", S.REJECTED, from_states=[S.PENDING], actor="m", reason="n")
    counts = await ledger.counts()
    assert set(counts) == set(S)
    assert counts[S.PENDING] == 2
    assert counts[S.REJECTED] == 1
    assert counts[S.APPROVED] == 0


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("newest_first", [True, False])
async def test_cursor_pages_cover_everything_once(
    redis: Redis, ties: bool, newest_first: bool
) -> None:
    """Following next cursors visits every id once, in order, even with equal timestamps."""
    ledger = RequestLedger(redis)
    ids = await fill(ledger, 23, ties=ties)
    pages = await walk(ledger, newest_first=newest_first, limit=5)
    flat = [request_id for page in pages for request_id in page]
    assert flat == (ids[::-1] if newest_first else ids)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]


async def test_prev_cursor_returns_to_the_previous_page(redis: Redis) -> None:
    """prev_cursor of page 3 gives page 2 back, in display order."""
    ledger = RequestLedger(redis)
    ids = await fill(ledger, 12, ties=True)
    first = await ledger.page(S.PENDING, limit=4)
    assert first.prev_cursor is None
    assert first.next_cursor is not None
    second = await ledger.page(S.PENDING, limit=4, cursor=first.next_cursor)
    third = await ledger.page(S.PENDING, limit=4, cursor=second.next_cursor)
    assert third.next_cursor is None
    assert third.prev_cursor is not None
    back = await ledger.page(S.PENDING, limit=4, cursor=third.prev_cursor)
    assert [r.request.id for r in back.records] == [r.request.id for r in second.records]
    assert [r.request.id for r in second.records] == ids[::-1][4:8]
    assert back.prev_cursor is not None
    again = await ledger.page(S.PENDING, limit=4, cursor=back.prev_cursor)
    assert [r.request.id for r in again.records] == [r.request.id for r in first.records]
    assert again.prev_cursor is None


async def test_cursor_survives_its_item_leaving_the_state(redis: Redis) -> None:
    """A cursor still works after the request it points at was approved away."""
    ledger = RequestLedger(redis)
    ids = await fill(ledger, 6)
    first = await ledger.page(S.PENDING, limit=3, newest_first=False)
    await ledger.transition(ids[2], S.REJECTED, from_states=[S.PENDING], actor="m", reason="n")
    rest = await ledger.page(S.PENDING, limit=3, cursor=first.next_cursor)
    assert [r.request.id for r in rest.records] == ids[3:]


async def test_offset_listing(redis: Redis) -> None:
    """list_records pages by offset and limit."""
    ledger = RequestLedger(redis)
    ids = await fill(ledger, 10)
    page = await ledger.list_records(S.PENDING, offset=2, limit=3, newest_first=False)
    assert [r.request.id for r in page] == ids[2:5]


async def test_bad_cursor_and_limits_are_refused(redis: Redis) -> None:
    """A garbled cursor or an absurd page size raise WriteRequestError."""
    ledger = RequestLedger(redis)
    with pytest.raises(WriteRequestError):
        await ledger.page(S.PENDING, cursor="!!not-a-cursor")
    with pytest.raises(WriteRequestError):
        await ledger.page(S.PENDING, limit=0)
