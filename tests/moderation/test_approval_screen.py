"""The approval screen shows quote, poll and media itself, with warnings (not only raw JSON)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.moderation.harness import Harness
from twitstack.moderation.roles import Role

pytestmark = pytest.mark.anyio


async def _screen(mod: Harness, payload: dict[str, Any]) -> str:
    """The request page with the collapsed raw payload cut out."""
    await mod.add_user("mia", Role.MODERATOR)
    request_id = await mod.pending(author="bot", payload=payload)
    async with mod.client() as client:
        await mod.login(client, "mia")
        page = (await client.get(f"/requests/{request_id}")).text
    assert f"/requests/{request_id}/approve" in page
    return re.sub(r"<details>.*?</details>", "", page, flags=re.S)


async def test_quoted_post_is_shown_with_a_link_and_a_warning(mod: Harness) -> None:
    page = await _screen(mod, {"text": "look at this", "quote_tweet_id": "1234567890123"})
    assert 'href="https://x.com/i/web/status/1234567890123"' in page
    assert "Quotes post 1234567890123" in page


async def test_poll_options_are_listed_on_the_screen(mod: Harness) -> None:
    poll = {"options": ["Free beer", "Send 1 BTC to win"], "duration_minutes": 60}
    page = await _screen(mod, {"text": "vote", "poll": poll})
    assert "<li><bdi>Free beer</bdi></li>" in page
    assert "<li><bdi>Send 1 BTC to win</bdi></li>" in page
    assert "runs 60 minutes" in page
    assert "Adds a poll with 2 options" in page


async def test_media_ids_are_listed_with_a_warning(mod: Harness) -> None:
    page = await _screen(mod, {"text": "pics", "media": {"media_ids": ["111", "222"]}})
    assert "<code>111</code>, <code>222</code>" in page
    assert "Attaches 2 media item(s)" in page


async def test_reply_target_is_shown(mod: Harness) -> None:
    page = await _screen(mod, {"text": "hi", "reply": {"in_reply_to_tweet_id": "987654321"}})
    assert 'href="https://x.com/i/web/status/987654321"' in page


def test_odd_payload_shapes_are_shown_not_trusted() -> None:
    from twitstack.moderation.views.attachments import attachments_of, post_link

    parts = attachments_of(
        "tweet",
        {"quote_tweet_id": "javascript:x", "poll": {"options": [1, None]}, "media": "x"},
    )
    assert parts.quote_tweet_id == "javascript:x"
    assert post_link(parts.quote_tweet_id) is None
    assert parts.poll_options == ("1", "None")
    assert parts.media_ids == ()
