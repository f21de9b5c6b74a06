"""Why X would refuse a draft (the scraper's `source.refusal`): queue, detail page and API."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.moderation.harness import Harness
from twitstack.moderation.db import open_database
from twitstack.moderation.migrations import MIGRATIONS
from twitstack.moderation.policy import check_request
from twitstack.moderation.roles import Role

pytestmark = pytest.mark.anyio
REASON = "@someone did not mention or quote @default"


def _source(**extra: Any) -> dict[str, Any]:
    return {"id": "1790000000000000009", "author": "someone", "text": "just a thought", **extra}


def _reply(text: str = "thanks!") -> dict[str, Any]:
    return {"text": text, "reply": {"in_reply_to_tweet_id": "1790000000000000009"}}


def test_the_refusal_comes_first_as_a_blocking_warning() -> None:
    warnings = check_request("tweet", _reply(), account="default", source=_source(refusal=REASON))
    assert warnings[0].code == "x_refusal"
    assert warnings[0].level == "block"
    assert REASON in warnings[0].message


def test_a_refusal_shows_whatever_the_action() -> None:
    warnings = check_request(
        "delete", {"tweet_id": "1"}, account="default", source=_source(refusal=REASON)
    )
    assert [w.code for w in warnings] == ["x_refusal"]


def test_no_refusal_no_refusal_warning() -> None:
    summoned = _source(text="hey @default what do you think?")
    assert check_request("tweet", _reply(), account="default", source=summoned) == []


async def test_queue_row_detail_page_and_api_show_the_refusal(mod: Harness) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    refused = await mod.pending(
        author="scraper:job", payload=_reply(), source=_source(refusal=REASON)
    )
    fine = await mod.pending(author="scraper:job", payload=_reply("ok"), source=_source())
    token = await mod.bearer("mo")
    async with mod.client() as client:
        await mod.login(client, "mo")
        queue = await client.get("/queue")
        detail = await client.get(f"/requests/{refused}")
        other = await client.get(f"/requests/{fine}")
        listing = await client.get("/api/requests", headers={"authorization": f"Bearer {token}"})
        one = await client.get(
            f"/api/requests/{refused}", headers={"authorization": f"Bearer {token}"}
        )
    rows = {r.split('"')[0]: r for r in queue.text.split('<tr data-id="')[1:]}
    assert "X would refuse" in rows[refused]
    assert REASON in rows[refused]
    assert "X would refuse" not in rows[fine]
    assert 'id="x-refusal"' in detail.text
    assert REASON in detail.text
    assert 'id="x-refusal"' not in other.text
    by_id = {item["id"]: item for item in listing.json()["items"]}
    assert by_id[refused]["refusal"] == REASON
    assert by_id[fine]["refusal"] is None
    assert one.json()["warnings"][0]["code"] == "x_refusal"


async def test_upgrading_the_store_fills_the_refusal_column_from_stored_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:3], start=1):
        conn.executescript(f"{script}\nPRAGMA user_version={number};")
    for request_id, source in (("r1", _source(refusal=REASON)), ("r2", _source()), ("r3", None)):
        conn.execute(
            "INSERT INTO requests (id, action, account, state, created_at, updated_at, data)"
            " VALUES (?, 'tweet', 'default', 'pending', 1, 1, ?)",
            (request_id, json.dumps({"source": source})),
        )
    conn.commit()
    conn.close()
    async with open_database(path) as db:
        rows = await db.fetchall("SELECT id, refusal FROM requests ORDER BY id")
    assert [(r["id"], r["refusal"]) for r in rows] == [("r1", REASON), ("r2", ""), ("r3", "")]
