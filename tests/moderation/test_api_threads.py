"""The JSON API and threads, polls, quotes: created, shown part by part, approved as one unit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.moderation.harness import Harness
from twitstack.moderation.roles import Role
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus, WriteAction

S = ModerationStatus
pytestmark = pytest.mark.anyio


async def _auth(mod: Harness, role: Role, name: str) -> dict[str, str]:
    await mod.add_user(name, role)
    return {"authorization": f"Bearer {await mod.bearer(name)}"}


def _thread(*texts: str) -> dict[str, Any]:
    return {"action": "thread", "payload": {"parts": [{"text": t} for t in texts]}}


async def test_thread_is_shown_part_by_part_and_approved_as_one(mod: Harness) -> None:
    """GET lists each part with its length; one approval queues the one request."""
    author = await _auth(mod, Role.AUTHOR, "bot")
    moderator = await _auth(mod, Role.MODERATOR, "mo")
    async with mod.client() as client:
        created = await client.post("/api/requests", json=_thread("a", "b é", "c"), headers=author)
        request_id = created.json()["id"]
        await mod.deps.history.catch_up()
        read = (await client.get(f"/api/requests/{request_id}", headers=moderator)).json()
        listed = await client.get("/api/requests?action=thread", headers=moderator)
        approved = await client.post(
            f"/api/requests/{request_id}/approve",
            json={"revision": read["revision"], "content_hash": read["content_hash"]},
            headers=moderator,
        )
    assert created.status_code == 201
    assert read["action"] == "thread"
    assert [(p["part"], p["text"], p["weighted_length"]) for p in read["parts"]] == [
        (1, "a", 1), (2, "b é", 3), (3, "c", 1),
    ]  # fmt: skip
    assert read["live_parts"] == []
    assert approved.status_code == 200, approved.text
    assert await mod.redis.llen(keys.WRITE_QUEUE) == 1
    [item] = listed.json()["items"]
    assert item["text"] == "thread of 3: a | b é | c"


async def test_editing_any_part_voids_the_approval_it_was_read_for(mod: Harness) -> None:
    """The content hash covers every part: an edit of part 2 makes the old hash a 409."""
    moderator = await _auth(mod, Role.MODERATOR, "mo")
    request_id = await mod.pending(
        author="bot", action=WriteAction.THREAD, payload=_thread("one", "two")["payload"]
    )
    async with mod.client() as client:
        read = (await client.get(f"/api/requests/{request_id}", headers=moderator)).json()
        edited = await client.patch(
            f"/api/requests/{request_id}",
            json={"revision": 1, "payload": _thread("one", "two, edited")["payload"]},
            headers=moderator,
        )
        stale = await client.post(
            f"/api/requests/{request_id}/approve",
            json={"revision": 2, "content_hash": read["content_hash"]},
            headers=moderator,
        )
    assert edited.status_code == 200
    assert stale.status_code == 409
    assert await mod.redis.llen(keys.WRITE_QUEUE) == 0


async def test_partly_posted_thread_lists_its_live_parts_with_links(mod: Harness) -> None:
    """A thread failed at part 3: the API names parts 1 and 2 with their X links."""
    viewer = await _auth(mod, Role.VIEWER, "v")
    request_id = await mod.pending(
        author="bot", action=WriteAction.THREAD, payload=_thread("p1", "p2", "p3")["payload"]
    )
    ledger = mod.deps.decisions.ledger
    result = {"tweet_id": "11", "thread_ids": ["11", "12"], "failed_part": 3, "parts": 3}
    await ledger.transition(
        request_id, S.NEEDS_REVIEW, from_states=[S.PENDING], actor="t", reason="test"
    )
    await ledger.transition(
        request_id, S.FAILED, from_states=[S.NEEDS_REVIEW], actor="t", reason="forbidden",
        result=result,
    )  # fmt: skip
    async with mod.client() as client:
        read = (await client.get(f"/api/requests/{request_id}", headers=viewer)).json()
    assert read["state"] == "failed"
    assert read["live_parts"] == [
        {"part": 1, "tweet_id": "11", "url": "https://x.com/i/web/status/11"},
        {"part": 2, "tweet_id": "12", "url": "https://x.com/i/web/status/12"},
    ]
    assert read["result"]["failed_part"] == 3


@pytest.mark.parametrize(
    ("message", "field", "words"),
    [
        (_thread(*[f"p{i}" for i in range(26)]), "payload.parts", "2-25 parts"),
        (_thread("fine", ""), "payload.parts[1].text", "non-blank"),
        (_thread("fine", "x" * 281), "payload.parts[1].text", "at most 280"),
        ({"action": "thread", "payload": {"parts": [{"text": "a"}, {"text": "b", "media": {}}]}},
         "payload.parts[1].media", "unknown field"),
        ({"action": "tweet", "payload": {"text": "t", "poll": {
            "options": list("abcde"), "duration_minutes": 60}}},
         "payload.poll.options", "2-4 options"),
        ({"action": "tweet", "payload": {"text": "t", "poll": {
            "options": ["a", "b"], "duration_minutes": 10081}}},
         "payload.poll.duration_minutes", "5-10080"),
        ({"action": "tweet", "payload": {"text": "t", "quote_tweet_id": "https://example.com/s/1"}},
         "payload.quote_tweet_id", "1-19 digits"),
        ({"action": "tweet", "payload": {"text": "t", "quote_tweet_id": "1", "poll": {
            "options": ["a", "b"], "duration_minutes": 60}}},
         "payload.quote_tweet_id", "at most one of"),
    ],
)  # fmt: skip
async def test_hostile_shapes_are_422_with_the_field_and_the_rule(
    mod: Harness, message: dict[str, Any], field: str, words: str
) -> None:
    """Refused before the ledger: 422, the field named, the rule in the message."""
    author = await _auth(mod, Role.AUTHOR, "bot")
    async with mod.client() as client:
        response = await client.post("/api/requests", json=message, headers=author)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert words in response.json()["detail"]
    assert await mod.deps.decisions.ledger.counts() == {s: 0 for s in S}


async def test_each_part_gets_the_tweet_warnings_named_by_its_number(mod: Harness) -> None:
    """Two cashtags in part 2, a URL in part 3: warnings say which part."""
    viewer = await _auth(mod, Role.VIEWER, "v")
    payload = _thread("fine", "Buy $AAA and $BBB", "see https://example.com")["payload"]
    request_id = await mod.pending(author="bot", action=WriteAction.THREAD, payload=payload)
    async with mod.client() as client:
        read = (await client.get(f"/api/requests/{request_id}", headers=viewer)).json()
    found = {(w["code"], w["message"].split(":")[0]) for w in read["warnings"]}
    assert ("cashtags", "Part 2") in found
    assert ("url_price", "Part 3") in found
    assert not any(w["message"].startswith("Part 1") for w in read["warnings"])


def test_a_dead_lettered_thread_previews_its_size_and_first_part() -> None:
    """The dead-letter list names a thread by its part count and a clipped first part."""
    from twitstack.moderation.dead_letters import preview

    message = json.dumps(_thread("t" * 100, *[f"p{i}" for i in range(25)]))
    shown = preview(message)
    assert shown.startswith("thread of 26 parts, 1: 'ttt")
    assert "t" * 40 not in shown
    assert "p3" not in shown
