"""Adversary: dead letters whose JSON holds lone-surrogate escapes, on the /dead-letters pages."""

from __future__ import annotations

import json

import pytest

from tests.moderation.harness import Harness
from twitstack.moderation.roles import Role
from twitstack.writes import keys

pytestmark = pytest.mark.anyio
# What the writer dead-letters as invalid_unicode: ASCII bytes that decode to U+D800.
BAD_TEXT = '{"action": "tweet", "payload": {"text": "\\ud800"}}'
LETTERS = [
    json.dumps({"reason": "invalid_unicode", "detail": "x", "raw": BAD_TEXT}),
    '{"reason": "\\udfff", "time": "\\ud800", "consumer": "\\ud800", "raw": "\\ud800"}',
]


@pytest.mark.parametrize("letter", LETTERS)
async def test_pages_show_entries_with_lone_surrogates(mod: Harness, letter: str) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    await mod.redis.rpush(keys.DEAD_LETTER, letter)
    [entry] = await mod.deps.dead_letters.list()
    async with mod.client() as client:
        await mod.login(client, "mo")
        listing = await client.get("/dead-letters")
        detail = await client.get(f"/dead-letters/{entry.id}")
    assert listing.status_code == 200
    assert detail.status_code == 200
    assert entry.id in listing.text
