"""Cached request lists: one computation for many callers, never older than the projection."""

from __future__ import annotations

from typing import Generic, TypeVar

import anyio
import pytest

from tests.moderation.conftest import ManualClock
from tests.moderation.harness import Harness
from twitstack.moderation.list_cache import ListCache
from twitstack.moderation.roles import Role

pytestmark = pytest.mark.anyio
T = TypeVar("T")


class Generation:
    """A projection generation tests bump by hand."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


async def test_concurrent_misses_compute_once(clock: ManualClock) -> None:
    cache: ListCache[str] = ListCache(clock, Generation())
    release = anyio.Event()
    calls = 0

    async def slow() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "rows"

    results: list[str] = []

    async def ask() -> None:
        results.append(await cache.fetch("queue", slow))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(ask)
            await anyio.wait_all_tasks_blocked()
            release.set()
    assert calls == 1
    assert results == ["rows"] * 20


async def test_a_change_to_the_projection_drops_cached_values(clock: ManualClock) -> None:
    generation = Generation()
    cache: ListCache[int] = ListCache(clock, generation, ttl_s=60)
    assert await cache.fetch("k", _value(1)) == 1
    assert await cache.fetch("k", _value(2)) == 1
    generation.value += 1
    assert await cache.fetch("k", _value(3)) == 3


async def test_values_expire_after_the_ttl(clock: ManualClock) -> None:
    cache: ListCache[int] = ListCache(clock, Generation(), ttl_s=1.0)
    assert await cache.fetch("k", _value(1)) == 1
    clock.advance(0.5)
    assert await cache.fetch("k", _value(2)) == 1
    clock.advance(0.6)
    assert await cache.fetch("k", _value(3)) == 3


async def test_a_result_computed_across_a_commit_is_not_kept(clock: ManualClock) -> None:
    """The query may have read the old rows: it answers its caller but is not served again."""
    generation = Generation()
    cache: ListCache[str] = ListCache(clock, generation, ttl_s=60)

    async def racing_commit() -> str:
        generation.value += 1
        return "old rows"

    assert await cache.fetch("k", racing_commit) == "old rows"
    assert await cache.fetch("k", _value("new rows")) == "new rows"


async def test_a_failed_computation_lets_waiters_compute_their_own(clock: ManualClock) -> None:
    cache: ListCache[str] = ListCache(clock, Generation())
    started = anyio.Event()
    failing_may_fail = anyio.Event()

    async def failing() -> str:
        started.set()
        await failing_may_fail.wait()
        raise RuntimeError("database gone")

    outcomes: list[str] = []

    async def first() -> None:
        with pytest.raises(RuntimeError):
            await cache.fetch("k", failing)
        outcomes.append("failed")

    async def second() -> None:
        outcomes.append(await cache.fetch("k", _value("recomputed")))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await started.wait()
            tg.start_soon(second)
            await anyio.wait_all_tasks_blocked()
            failing_may_fail.set()
    assert sorted(outcomes) == ["failed", "recomputed"]


async def test_the_entry_count_stays_bounded(clock: ManualClock) -> None:
    cache: ListCache[int] = ListCache(clock, Generation(), max_entries=3)
    for i in range(10):
        await cache.fetch(i, _value(i))
    assert [cache.get(i) for i in range(10)] == [None] * 7 + [7, 8, 9]


async def test_queue_and_api_show_a_new_request_at_once_despite_the_cache(mod: Harness) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    await mod.pending(text="first one")
    token = await mod.bearer("mo")
    auth = {"authorization": f"Bearer {token}"}
    async with mod.client() as client:
        await mod.login(client, "mo")
        before = await client.get("/queue")
        api_before = await client.get("/api/requests", headers=auth)
        await mod.pending(text="second one")  # the clock does not move: only the data does
        after = await client.get("/queue")
        rows = await client.get("/queue/rows")
        api_after = await client.get("/api/requests", headers=auth)
    assert "second one" not in before.text
    assert api_before.json()["total"] == 1
    assert "second one" in after.text
    assert 'id="pending-total">2<' in after.text
    assert rows.headers["x-total-count"] == "2"
    assert api_after.json()["total"] == 2


def _value(value: T) -> _Const[T]:
    return _Const(value)


class _Const(Generic[T]):
    """A computation that returns `value`."""

    def __init__(self, value: T) -> None:
        self.value = value

    async def __call__(self) -> T:
        return self.value


async def test_cached_rows_are_right_per_role_and_carry_no_ones_csrf_token(mod: Harness) -> None:
    """The rows are shared between users with the same view: a moderator's render (with
    approve bindings) is never served to a viewer, and no session's CSRF token is in them."""
    await mod.add_user("mo", Role.MODERATOR)
    await mod.add_user("mo2", Role.MODERATOR)
    await mod.add_user("vi", Role.VIEWER)
    request_id = await mod.pending(text="shared row")
    pages: dict[str, str] = {}
    tokens: dict[str, str] = {}
    for name in ("mo", "vi", "mo2"):  # the clock does not move: every view is from the cache
        async with mod.client() as client:
            tokens[name] = await mod.login(client, name)
            pages[name] = (await client.get("/queue")).text
            pages[name + "-rows"] = (await client.get("/queue/rows")).text
    assert mod.deps.lists.computed == 2  # one per role view, shared by both moderators
    for name in ("mo", "mo2"):
        assert f'name="approve_one" value="{request_id} ' in pages[name]
        assert f'value="{tokens[name]}"' in pages[name]
    assert "approve_one" not in pages["vi"] + pages["vi-rows"]
    assert "shared row" in pages["vi-rows"]
    for name in ("mo", "vi", "mo2"):
        for other in {"mo", "vi", "mo2"} - {name}:
            assert tokens[other] not in pages[name] + pages[name + "-rows"]
