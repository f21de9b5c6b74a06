"""One unreadable record or event never stops the history: quarantined, passed over, counted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.moderation.harness import Harness
from twitstack.moderation.roles import Role
from twitstack.writes import keys
from twitstack.writes.models import MAX_REVISION

pytestmark = pytest.mark.anyio


async def _quarantined(mod: Harness) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in await mod.redis.lrange(keys.QUARANTINE, 0, -1)]


def _counted(mod: Harness, source: str, reason: str) -> float:
    value = mod.deps.registry.get_sample_value(
        "twitstack_quarantined_total", {"source": source, "reason": reason}
    )
    return 0.0 if value is None else value


async def _good_event_is_ingested_after(mod: Harness) -> None:
    request_id = await mod.pending(text="after the poison")
    row = await mod.deps.db.fetchval("SELECT text FROM requests WHERE id = ?", (request_id,))
    assert row == "after the poison"


async def test_edit_past_the_highest_revision_is_a_4xx_and_history_goes_on(mod: Harness) -> None:
    """The reported attack: create at revision 1000000, PATCH once -> 422, not 500 and a poison."""
    await mod.add_user("bot", Role.AUTHOR)
    auth = {"authorization": f"Bearer {await mod.bearer('bot')}"}
    async with mod.client() as client:
        created = await client.post(
            "/api/requests",
            json={"action": "tweet", "payload": {"text": "hi"}, "revision": MAX_REVISION},
            headers=auth,
        )
        assert created.status_code == 201, created.text
        request_id = created.json()["id"]
        edited = await client.patch(
            f"/api/requests/{request_id}",
            json={"revision": MAX_REVISION, "payload": {"text": "hi again"}},
            headers=auth,
        )
        past = await client.post(
            "/api/requests",
            json={"action": "tweet", "payload": {"text": "x"}, "revision": MAX_REVISION + 1},
            headers=auth,
        )
        shown = await client.get(f"/api/requests/{request_id}", headers=auth)
    assert edited.status_code == 422, edited.text
    assert edited.json()["field"] == "revision"
    assert past.status_code == 422
    assert shown.status_code == 200
    assert shown.json()["revision"] == MAX_REVISION
    await _good_event_is_ingested_after(mod)


async def test_event_with_an_unknown_state_is_quarantined_and_passed(mod: Harness) -> None:
    """An XADD with a state no code knows: one quarantine entry, the cursor moves past it."""
    await mod.deps.history.catch_up()
    bad_id = await mod.redis.xadd(
        keys.EVENTS, {"id": "r-x", "to": "exploded", "time": "2026-01-01T00:00:00+00:00"}
    )
    assert await mod.deps.history.catch_up() == 1
    await _good_event_is_ingested_after(mod)
    [entry] = await _quarantined(mod)
    assert (entry["source"], entry["ref"], entry["reason"]) == (
        "event",
        bad_id.decode(),
        "malformed_event",
    )
    assert "exploded" in entry["detail"]
    assert _counted(mod, "event", "malformed_event") == 1


async def test_event_of_a_record_whose_request_is_not_json_is_quarantined(mod: Harness) -> None:
    """The record is quarantined once (event and resync both meet it); the rest is ingested."""
    request_id = await mod.pending(text="about to be poisoned")
    await mod.redis.hset(keys.request(request_id), "request", "{not json")
    await mod.redis.xadd(
        keys.EVENTS,
        {"id": request_id, "from": "pending", "to": "pending", "time": "2026-01-01T00:00:00+00:00"},
    )
    await mod.deps.history.catch_up()
    await mod.deps.history.resync_from_indexes()
    await _good_event_is_ingested_after(mod)
    await mod.add_user("mod", Role.MODERATOR)
    auth = {"authorization": f"Bearer {await mod.bearer('mod')}"}
    async with mod.client() as client:
        shown = await client.get(f"/api/requests/{request_id}", headers=auth)
        approve = await client.post(
            f"/api/requests/{request_id}/approve", json={"revision": 1}, headers=auth
        )
    assert shown.status_code == 409
    assert approve.status_code in (409, 422)  # never a 500 (422: no content hash to bind)
    assert "quarantined" in shown.json()["detail"]
    [entry] = await _quarantined(mod)
    assert (entry["source"], entry["ref"], entry["reason"]) == (
        "record",
        request_id,
        "malformed_record",
    )
    assert _counted(mod, "record", "malformed_record") == 1
    # The last good projection of the request stays; it is not treated as expired.
    row = await mod.deps.db.fetchval("SELECT text FROM requests WHERE id = ?", (request_id,))
    assert row == "about to be poisoned"


async def test_record_left_past_the_highest_revision_is_quarantined(mod: Harness) -> None:
    """A record an older version let through (revision 1000001) no longer stops anything."""
    request_id = await mod.pending(text="edited too often")
    raw = json.loads(await mod.redis.hget(keys.request(request_id), "request"))
    raw["revision"] = MAX_REVISION + 1
    await mod.redis.hset(
        keys.request(request_id),
        mapping={"request": json.dumps(raw), "revision": MAX_REVISION + 1},
    )
    await mod.redis.xadd(
        keys.EVENTS,
        {"id": request_id, "from": "pending", "to": "pending", "time": "2026-01-01T00:00:00+00:00"},
    )
    await mod.deps.history.catch_up()
    await _good_event_is_ingested_after(mod)
    [entry] = await _quarantined(mod)
    assert (entry["source"], entry["ref"], entry["reason"]) == (
        "record",
        request_id,
        "invalid_field",
    )
    assert "revision" in entry["detail"]


async def test_record_key_of_the_wrong_type_is_quarantined(mod: Harness) -> None:
    """A `writes:request:<id>` that is a string, not a hash: no Redis error loop, quarantined."""
    await mod.deps.history.catch_up()
    await mod.redis.set(keys.request("r-string"), "not a hash")
    await mod.redis.xadd(
        keys.EVENTS, {"id": "r-string", "to": "pending", "time": "2026-01-01T00:00:00+00:00"}
    )
    await mod.deps.history.catch_up()
    await _good_event_is_ingested_after(mod)
    [entry] = await _quarantined(mod)
    assert (entry["source"], entry["ref"], entry["reason"]) == ("record", "r-string", "wrong_type")
    await mod.add_user("mod", Role.MODERATOR)
    auth = {"authorization": f"Bearer {await mod.bearer('mod')}"}
    async with mod.client() as client:
        shown = await client.get("/api/requests/r-string", headers=auth)
    assert shown.status_code == 409
