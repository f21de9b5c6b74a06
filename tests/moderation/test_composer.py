"""The composer (New and Edit forms): threads, polls and quotes, validated like every door."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.moderation.harness import Harness
from twitstack.moderation.quoted_posts import QuotedPosts
from twitstack.moderation.roles import Role
from twitstack.writes.ledger_types import LedgerRecord
from twitstack.writes.models import ModerationStatus, WriteAction

S = ModerationStatus
pytestmark = pytest.mark.anyio


async def _only_record(mod: Harness) -> LedgerRecord:
    [record] = await mod.deps.decisions.ledger.list_records(S.PENDING)
    return record


def _form(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Repeated names, in order, as httpx sends them."""
    form: dict[str, list[str]] = {}
    for name, value in fields:
        form.setdefault(name, []).append(value)
    return form


async def _post_new(mod: Harness, fields: list[tuple[str, str]]) -> httpx.Response:
    await mod.add_user("ann", Role.AUTHOR)
    async with mod.client() as client:
        csrf = await mod.login(client, "ann")
        return await client.post("/requests/new", data=_form([("csrf_token", csrf), *fields]))


async def test_parts_after_the_text_make_a_thread_in_order(mod: Harness) -> None:
    """Text plus two non-blank parts: one thread of three; blank boxes are not parts."""
    response = await _post_new(
        mod, [("text", "first"), ("part", "second"), ("part", "  "), ("part", "third")]
    )
    assert response.status_code == 303
    record = await _only_record(mod)
    assert record.request.action is WriteAction.THREAD
    assert record.request.payload == {"parts": [{"text": t} for t in ("first", "second", "third")]}


async def test_poll_boxes_make_a_poll_and_a_quote_url_its_id(mod: Harness) -> None:
    """Two filled options of four and a duration: X's poll; a status URL: quote_tweet_id."""
    fields = [("text", "vote"), ("poll_option", "yes"), ("poll_option", "no"),
              ("poll_option", ""), ("poll_option", ""), ("poll_minutes", "1440")]  # fmt: skip
    assert (await _post_new(mod, fields)).status_code == 303
    record = await _only_record(mod)
    assert record.request.payload == {
        "text": "vote",
        "poll": {"options": ["yes", "no"], "duration_minutes": 1440},
    }


async def test_quote_url_becomes_the_post_id(mod: Harness) -> None:
    """https://twitter.com/u/status/N?s=20 quotes post N."""
    fields = [("text", "look"), ("quote", "https://twitter.com/u/status/4242?s=20")]
    assert (await _post_new(mod, fields)).status_code == 303
    assert (await _only_record(mod)).request.payload == {"text": "look", "quote_tweet_id": "4242"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([("text", "t"), ("quote", "https://example.com/u/status/1")], "Quote: expected a post id"),
        ([("text", "t"), *[("poll_option", o) for o in "abcde"], ("poll_minutes", "60")],
         "payload.poll.options: expected a list of 2-4 options"),
        ([("text", "t"), ("poll_option", "a"), ("poll_option", "b"), ("poll_minutes", "4")],
         "payload.poll.duration_minutes: expected an integer 5-10080"),
        ([("text", "t"), ("poll_option", "a"), ("poll_minutes", "")], "Poll: expected a duration"),
        ([("text", "t"), ("quote", "1"), ("poll_option", "a"), ("poll_option", "b"),
          ("poll_minutes", "60")], "expected at most one of media, poll, quote_tweet_id"),
        ([("text", "t"), *[("part", f"p{i}") for i in range(25)]],
         "payload.parts: expected a list of 2-25 parts"),
        ([("text", "t"), ("part", "y" * 281)], "payload.parts[1].text: expected at most 280"),
    ],
)  # fmt: skip
async def test_bad_input_is_refused_with_the_rule_and_the_typed_values_kept(
    mod: Harness, fields: list[tuple[str, str]], message: str
) -> None:
    """4xx with the message on the page; what was typed is still in the boxes; nothing recorded."""
    response = await _post_new(mod, fields)
    assert response.status_code == 422
    assert message in response.text.replace("&#39;", "'")
    assert 'name="text" rows="5" autofocus id="new-text"' in response.text
    assert ">t</textarea>" in response.text
    assert await mod.deps.decisions.ledger.counts() == {s: 0 for s in S}


async def test_the_new_form_needs_its_csrf_token(mod: Harness) -> None:
    """Without the session's token the form is refused and nothing is recorded."""
    await mod.add_user("ann", Role.AUTHOR)
    async with mod.client() as client:
        await mod.login(client, "ann")
        response = await client.post(
            "/requests/new", data={"text": "a", "part": "b", "csrf_token": "forged"}
        )
    assert response.status_code == 403
    assert await mod.deps.decisions.ledger.counts() == {s: 0 for s in S}


async def test_editing_a_part_makes_a_new_revision_of_the_whole_thread(mod: Harness) -> None:
    """Edit form: part 2 changed, part 3 removed; a later part's API-set poll is kept."""
    payload: dict[str, Any] = {"parts": [
        {"text": "one"}, {"text": "two", "poll": {"options": ["a", "b"], "duration_minutes": 5}},
        {"text": "three"}]}  # fmt: skip
    request_id = await mod.pending(author="ann", action=WriteAction.THREAD, payload=payload)
    await mod.add_user("ann", Role.AUTHOR)
    async with mod.client() as client:
        csrf = await mod.login(client, "ann")
        page = await client.get(f"/requests/{request_id}/edit")
        saved = await client.post(
            f"/requests/{request_id}/edit",
            data=_form([("csrf_token", csrf), ("revision", "1"), ("composer", "1"),
                        ("text", "one"), ("part", "two, better"), ("part", "")]),
        )  # fmt: skip
    assert ">three</textarea>" in page.text
    assert saved.status_code == 303
    record = await mod.deps.decisions.get(request_id)
    assert record is not None
    assert record.request.revision == 2
    poll = {"options": ["a", "b"], "duration_minutes": 5}
    assert record.request.payload == {
        "parts": [{"text": "one"}, {"text": "two, better", "poll": poll}]
    }


async def test_detail_shows_each_part_and_the_quoted_post_from_the_store(
    mod: Harness, tmp_path: Path
) -> None:
    """Parts with their counts; the quoted post's text when the scraper stored it."""
    store = tmp_path / "scraper.db"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE tweets (id INTEGER PRIMARY KEY, text TEXT, author_username TEXT)")
        db.execute("INSERT INTO tweets VALUES (777, 'the quoted words', 'someone')")
    mod.deps.quoted_posts = QuotedPosts(store)
    payload = {"parts": [{"text": "see this", "quote_tweet_id": "777"}, {"text": "and more"}]}
    known = await mod.pending(author="bot", action=WriteAction.THREAD, payload=payload)
    unknown = await mod.pending(author="bot", payload={"text": "q", "quote_tweet_id": "778"})
    await mod.add_user("mo", Role.MODERATOR)
    async with mod.client() as client:
        await mod.login(client, "mo")
        thread_page = (await client.get(f"/requests/{known}")).text
        tweet_page = (await client.get(f"/requests/{unknown}")).text
    assert 'id="part-1"' in thread_page
    assert 'id="part-2"' in thread_page
    assert "part 2 · 8 / 280 weighted characters" in thread_page
    assert "the quoted words" in thread_page
    assert "not in the scraper's store" in tweet_page
    assert "https://x.com/i/web/status/778" in tweet_page


async def test_a_partly_posted_thread_says_which_parts_are_live(mod: Harness) -> None:
    """Failed at part 3 of 3: the page warns that 2 parts are live and links them."""
    request_id = await mod.pending(
        author="bot", action=WriteAction.THREAD,
        payload={"parts": [{"text": "p1"}, {"text": "p2"}, {"text": "p3"}]},
    )  # fmt: skip
    ledger = mod.deps.decisions.ledger
    await ledger.transition(
        request_id, S.NEEDS_REVIEW, from_states=[S.PENDING], actor="t", reason="t"
    )
    result = {"tweet_id": "21", "thread_ids": ["21", "22"], "failed_part": 3, "parts": 3,
              "detail": "You are not permitted to perform this action."}  # fmt: skip
    await ledger.transition(
        request_id, S.FAILED, from_states=[S.NEEDS_REVIEW], actor="t", reason="forbidden",
        result=result,
    )  # fmt: skip
    await mod.deps.history.catch_up()
    await mod.add_user("mo", Role.MODERATOR)
    async with mod.client() as client:
        await mod.login(client, "mo")
        page = (await client.get(f"/requests/{request_id}")).text
    assert "Only 2 of 3 parts are live on X" in page
    assert "part 3 was refused (You are not permitted to perform this action.)" in page
    assert 'href="https://x.com/i/web/status/21"' in page
    assert 'href="https://x.com/i/web/status/22"' in page
    assert page.count('class="live-part"') == 2


async def test_preview_shows_exact_counts_and_the_quote_without_recording(
    mod: Harness, tmp_path: Path
) -> None:
    """Preview: each part with the server's weighted count, the quoted post; nothing stored."""
    store = tmp_path / "scraper.db"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE tweets (id INTEGER PRIMARY KEY, text TEXT, author_username TEXT)")
        db.execute("INSERT INTO tweets VALUES (555, 'what they said', 'them')")
    mod.deps.quoted_posts = QuotedPosts(store)
    fields = [("text", "see https://example.com/a/very/long/path"), ("part", "日本"),
              ("quote", "https://x.com/them/status/555"), ("preview", "1")]  # fmt: skip
    response = await _post_new(mod, fields)
    assert response.status_code == 200
    assert "part 1 · 27 / 280 weighted characters" in response.text  # the URL counts 23
    assert "part 2 · 4 / 280 weighted characters" in response.text  # CJK counts 2
    assert "what they said" in response.text
    assert await mod.deps.decisions.ledger.counts() == {s: 0 for s in S}
