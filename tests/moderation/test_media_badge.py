"""The queue's media badge (projected into the history, and back-filled by migration 8 for
rows stored before it) and the API detail's missing-alt-text warning."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.moderation.harness import Harness
from twitstack.moderation.db import open_database
from twitstack.moderation.media_badge import media_label, media_of
from twitstack.moderation.migrations import MIGRATIONS
from twitstack.moderation.roles import Role

pytestmark = pytest.mark.anyio


def _file(n: int, kind: str = "image/png", alt: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"sha256": f"{n:064x}", "type": kind, "size": 100 + n}
    return entry if alt is None else {**entry, "alt_text": alt}


PAYLOADS: dict[str, dict[str, Any]] = {
    "two": {"text": "two pictures", "media": {"attachments": [_file(1), _file(2, alt="b")]}},
    "clip": {"text": "a clip", "media": {"attachments": [_file(3, "video/mp4", "c")]}},
    "loop": {"text": "a loop", "media": {"attachments": [_file(4, "image/gif", "d")]}},
    "one": {"text": "one picture", "media": {"attachments": [_file(5, alt="e")]}},
    "ids": {"text": "by id", "media": {"media_ids": ["1790000000000000001"]}},
    "plain": {"text": "just words"},
}
LABELS = {"two": "2 images", "clip": "video", "loop": "GIF", "one": "image", "ids": "1 media id",
          "plain": ""}  # fmt: skip


def test_labels() -> None:
    assert {k: media_label(media_of(p)) for k, p in PAYLOADS.items()} == LABELS
    assert media_label("junk") == media_label("image:x") == media_label(None) == ""


async def test_queue_rows_show_the_media_badge(mod: Harness) -> None:
    """Each queue row says what its request attaches; a post without media has no badge."""
    await mod.add_user("mia", Role.MODERATOR)
    ids = {name: await mod.pending(payload=payload) for name, payload in PAYLOADS.items()}
    async with mod.client() as client:
        await mod.login(client, "mia")
        page = await client.get("/queue")
    assert page.status_code == 200
    rows = dict(re.findall(r'<tr data-id="([^"]+)">(.*?)</tr>', page.text, flags=re.S))
    for name, request_id in ids.items():
        badges = re.findall(
            r'<span class="badge media-badge"[^>]*>([^<]*)</span>', rows[request_id]
        )
        assert badges == ([LABELS[name]] if LABELS[name] else []), name


async def test_migration_backfills_the_column(tmp_path: Path) -> None:
    """Rows projected at schema 7 get the same column the projection writes now."""
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:7], start=1):
        conn.executescript(f"{script}\nPRAGMA user_version={number};")
    stored = {**PAYLOADS, "odd": {"media": {"attachments": "not a list"}}}
    for name, payload in stored.items():
        conn.execute(
            "INSERT INTO requests (id, action, account, state, created_at, updated_at, data)"
            " VALUES (?, 'tweet', 'default', 'pending', 1, 1, ?)",
            (name, json.dumps({"payload": payload})),
        )
    conn.execute(
        "INSERT INTO requests (id, action, account, state, created_at, updated_at, data)"
        " VALUES ('broken', 'tweet', 'default', 'pending', 1, 1, 'not json')"
    )
    conn.commit()
    conn.close()
    async with open_database(path) as db:
        rows = await db.fetchall("SELECT id, media FROM requests")
    found = {r["id"]: r["media"] for r in rows}
    assert found == {**{k: media_of(p) for k, p in stored.items()}, "broken": ""}
    assert found["two"] == "image:2"


async def test_api_detail_warns_on_missing_alt_text(mod: Harness) -> None:
    """GET /api/requests/{id} carries the same missing-alt-text warning as the review page."""
    await mod.add_user("mia", Role.MODERATOR)
    missing = await mod.pending(payload=PAYLOADS["two"])
    described = await mod.pending(payload=PAYLOADS["one"])
    auth = {"authorization": f"Bearer {await mod.bearer('mia')}"}
    async with mod.client() as client:
        one = (await client.get(f"/api/requests/{missing}", headers=auth)).json()
        other = (await client.get(f"/api/requests/{described}", headers=auth)).json()
    (warning,) = [w for w in one["warnings"] if w["code"] == "missing_alt_text"]
    assert warning["level"] == "warn"
    assert warning["message"].startswith("Media 1 has no alt text")
    assert not [w for w in other["warnings"] if w["code"] == "missing_alt_text"]
