"""Quarantine records each unreadable item once, across sweeps and replicas, and counts it."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from twitstack.core.metrics import new_registry, quarantine_counter
from twitstack.writes import keys
from twitstack.writes.errors import UnreadableError
from twitstack.writes.quarantine import Quarantine

pytestmark = pytest.mark.anyio


async def test_one_entry_per_item_across_two_replicas(redis: Redis) -> None:
    """Two replicas meeting the same bad record: one entry, counted by whoever stored it."""
    first_registry, second_registry = new_registry(), new_registry()
    first = Quarantine(redis, quarantine_counter(first_registry), service="writer")
    second = Quarantine(redis, quarantine_counter(second_registry), service="writer")
    error = UnreadableError("record", "r-1", "malformed_record", "JSONDecodeError: ...")
    assert await first.put_error(error) is True
    assert await first.put_error(error) is False  # the next sweep meets it again
    assert await second.put_error(error) is False  # another replica meets it
    [raw] = await redis.lrange(keys.QUARANTINE, 0, -1)
    entry = json.loads(raw)
    assert (entry["service"], entry["source"], entry["ref"], entry["reason"]) == (
        "writer",
        "record",
        "r-1",
        "malformed_record",
    )
    labels = {"source": "record", "reason": "malformed_record"}
    assert first_registry.get_sample_value("twitstack_quarantined_total", labels) == 1
    assert second_registry.get_sample_value("twitstack_quarantined_total", labels) is None


async def test_detail_is_cut_and_other_items_are_kept_apart(redis: Redis) -> None:
    quarantine = Quarantine(redis, quarantine_counter(new_registry()), service="moderation")
    await quarantine.put("event", "1-1", "malformed_event", "x" * 5000)
    await quarantine.put("record", "1-1", "malformed_record", "short")
    entries = [json.loads(raw) for raw in await redis.lrange(keys.QUARANTINE, 0, -1)]
    assert [e["source"] for e in entries] == ["record", "event"]  # newest first
    assert len(entries[1]["detail"]) == 500
