"""The review desk's doors over HTTP: the counting endpoint, bulk decisions, retry/copy, the
schedule's cancel/reschedule, card context for own posts, diffs and the v7 backfill."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.moderation.harness import Harness
from twitstack.core.sealing import SealingKeyRing, generate_key_ring
from twitstack.core.sections.writer import WriterSettings, XAccountSettings
from twitstack.moderation.card_context import context_of, describe, parse_context
from twitstack.moderation.db import open_database
from twitstack.moderation.migrations import MIGRATIONS
from twitstack.moderation.revisions import word_diff
from twitstack.moderation.roles import Role
from twitstack.moderation.x_accounts_ui import XAccountsUi
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.text import tweet_weighted_length
from twitstack.writes.token_store import SealedTokenStore
from twitstack.writes.x_accounts import ConnectedAccounts

pytestmark = pytest.mark.anyio
HOSTILE = [
    "",
    "https://example.com/" + "a" * 200,
    "東京 👨‍👩‍👧‍👦 🇯🇵",
    "e\u0301 vs é",
    "\u202eevil\u202c",
    "x" * 281,
    "$AAA $BBB",
]


async def test_check_counts_as_the_server_does_and_refuses_bad_input(mod: Harness) -> None:
    await mod.add_user("ann", Role.AUTHOR)
    await mod.add_user("vi", Role.VIEWER)
    request_id = await mod.pending(
        author="bot",
        payload={"text": "hi", "reply": {"in_reply_to_tweet_id": "5"}},
        source={"id": "5", "author": "carol", "text": "hello @default"},
    )
    async with mod.client() as client, mod.client() as viewer:
        csrf = await mod.login(client, "ann")
        vcsrf = await mod.login(viewer, "vi")
        headers = {"x-csrf-token": csrf, "content-type": "application/json"}
        for text in HOSTILE:
            answer = await client.post("/compose/check", json={"text": text}, headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.json()["weighted"] == tweet_weighted_length(text), text
            assert answer.json()["over"] is (tweet_weighted_length(text) > 280)
        cashtags = await client.post("/compose/check", json={"text": "$AAA $BBB"}, headers=headers)
        assert [w["code"] for w in cashtags.json()["warnings"]] == ["cashtags"]
        # With a request id, the request's reply and source count too (summoned: no warning).
        edit = await client.post(
            "/compose/check",
            json={"text": "https://example.com", "request_id": request_id},
            headers=headers,
        )
        assert [w["code"] for w in edit.json()["warnings"]] == ["url_price"]
        refused = {
            "no csrf": await client.post("/compose/check", json={"text": "a"}),
            "viewer": await viewer.post(
                "/compose/check", json={"text": "a"}, headers={"x-csrf-token": vcsrf}
            ),
            "not json": await client.post("/compose/check", content=b"{", headers=headers),
            "not text": await client.post("/compose/check", json={"text": 5}, headers=headers),
            "too long": await client.post(
                "/compose/check", json={"text": "a" * 10_001}, headers=headers
            ),
            "unknown id": await client.post(
                "/compose/check", json={"text": "a", "request_id": "nope"}, headers=headers
            ),
        }
    statuses = {name: r.status_code for name, r in refused.items()}
    assert statuses == {
        "no csrf": 403,
        "viewer": 403,
        "not json": 400,
        "not text": 422,
        "too long": 422,
        "unknown id": 404,
    }


def _pick(page: str, request_id: str) -> str:
    found = re.search(rf'name="pick" value="({re.escape(request_id)} \d+ [0-9a-f]{{64}})"', page)
    assert found is not None, f"no checkbox for {request_id}"
    return found.group(1)


async def test_bulk_approves_exactly_what_was_shown_and_reports_each(mod: Harness) -> None:
    for name, role in (("mia", Role.MODERATOR), ("ann", Role.AUTHOR)):
        await mod.add_user(name, role)
    ids = [await mod.pending(author="ann", text=f"post {n}") for n in range(3)]
    own = await mod.pending(author="mia", text="mia wrote this")
    async with mod.client() as client, mod.client() as author:
        csrf = await mod.login(client, "mia")
        acsrf = await mod.login(author, "ann")
        queue = (await client.get("/queue")).text
        picks = [_pick(queue, i) for i in [*ids, own]]
        # The last one changes after the page was rendered.
        ann = await mod.deps.users.get(mod.users["ann"])
        assert ann is not None
        await mod.deps.decisions.edit(ids[2], {"text": "post 2, changed"}, expected_revision=1,
                                      user=ann)  # fmt: skip
        forged = f"{ids[1]} 1 {'0' * 64}"
        data = {"csrf_token": csrf, "do": "approve", "pick": [picks[0], picks[2], picks[3]]}
        result = await client.post("/queue/bulk", data=data)
        second = await client.post(
            "/queue/bulk", data={"csrf_token": csrf, "do": "approve", "pick": [forged, "junk"]}
        )
        no_csrf = await client.post("/queue/bulk", data={"do": "approve", "pick": picks[1]})
        by_author = await author.post(
            "/queue/bulk", data={"csrf_token": acsrf, "do": "approve", "pick": picks[1]}
        )
        no_reason = await client.post(
            "/queue/bulk", data={"csrf_token": csrf, "do": "reject", "pick": picks[1]}
        )
        rejected = await client.post(
            "/queue/bulk",
            data={"csrf_token": csrf, "do": "reject", "pick": picks[1], "preset": "Wrong account"},
        )
        made_up = await client.post(
            "/queue/bulk",
            data={"csrf_token": csrf, "do": "reject", "pick": picks[1], "preset": "not listed"},
        )
    assert result.status_code == 200
    assert "Approved 1 of 3" in result.text
    assert re.search(rf'data-id="{ids[0]}" data-ok="yes"', result.text)
    assert re.search(rf'data-id="{ids[2]}" data-ok="no"', result.text)
    assert re.search(rf'data-id="{own}" data-ok="no"', result.text)
    assert "«post 0»" in result.text
    assert "Approved 0 of 2" in second.text
    assert "changed since you opened it" in second.text
    assert no_csrf.status_code == 403
    assert by_author.status_code == 403
    assert no_reason.status_code == 303
    assert "Rejected 1 of 1" in rejected.text
    assert made_up.status_code == 303  # an unlisted preset is no reason
    states = {i: (await mod.deps.decisions.get(i)) for i in [*ids, own]}
    assert {i: r.state if r else None for i, r in states.items()} == {
        ids[0]: S.APPROVED,
        ids[1]: S.REJECTED,
        ids[2]: S.PENDING,
        own: S.PENDING,
    }
    record = states[ids[1]]
    assert record is not None
    assert record.last_reason == "Wrong account"


async def test_retry_and_copy_make_new_audited_requests(mod: Harness) -> None:
    await mod.add_user("ann", Role.AUTHOR)
    await mod.add_user("vi", Role.VIEWER)
    failed = await mod.pending(author="bot", text="X said no")
    pending = await mod.pending(author="bot", text="still waiting")
    ledger = mod.deps.decisions.ledger
    await ledger.transition(failed, S.APPROVED, from_states=[S.PENDING], actor="t", reason="t")
    await ledger.transition(failed, S.SENDING, from_states=[S.APPROVED], actor="t", reason="t")
    await ledger.transition(
        failed, S.FAILED, from_states=[S.SENDING], actor="writer", reason="forbidden",
        result={"detail": "You are not permitted to perform this action."},
    )  # fmt: skip
    await mod.deps.history.catch_up()
    async with mod.client() as client, mod.client() as viewer:
        csrf = await mod.login(client, "ann")
        vcsrf = await mod.login(viewer, "vi")
        detail = await client.get(f"/requests/{failed}")
        retried = await client.post(f"/requests/{failed}/retry", data={"csrf_token": csrf})
        copied = await client.post(f"/requests/{failed}/copy", data={"csrf_token": csrf})
        not_failed = await client.post(f"/requests/{pending}/retry", data={"csrf_token": csrf})
        by_viewer = await viewer.post(f"/requests/{failed}/retry", data={"csrf_token": vcsrf})
    assert "You are not permitted to perform this action." in detail.text
    assert 'id="retry"' in detail.text
    assert retried.status_code == 303
    new_id = retried.headers["location"].rsplit("/", 1)[-1]
    assert copied.headers["location"].endswith("/edit")
    assert not_failed.headers["location"] == f"/requests/{pending}"
    assert by_viewer.status_code == 403
    new = await mod.deps.decisions.get(new_id)
    assert new is not None
    assert new.state is S.PENDING
    assert new.request.payload == {"text": "X said no"}
    assert new.request.author == "ann"
    rows = await mod.deps.db.fetchall("SELECT action, target, detail FROM audit_log")
    retries = [json.loads(r[2]) for r in rows if r[0] == "request.retry"]
    assert retries == [{"from": failed, "from_state": "failed"}]


async def _approved_at(mod: Harness, text: str, when: datetime) -> str:
    request_id = await mod.pending(author="bot", text=text, not_before=when)
    raj = await mod.deps.users.get(mod.users["raj"])
    assert raj is not None
    await mod.deps.decisions.approve(
        request_id, expected_revision=1, expected_content_hash=await mod.content_hash(request_id),
        user=raj,
    )  # fmt: skip
    return request_id


async def test_reschedule_later_keeps_the_approval_earlier_is_refused(mod: Harness) -> None:
    await mod.add_user("mia", Role.MODERATOR)
    await mod.add_user("raj", Role.MODERATOR)
    await mod.add_user("ann", Role.AUTHOR)
    when = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    request_id = await _approved_at(mod, "later please", when)
    async with mod.client() as client, mod.client() as author:
        csrf = await mod.login(client, "mia")
        acsrf = await mod.login(author, "ann")
        later = (when + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
        moved = await client.post(
            f"/requests/{request_id}/reschedule", data={"csrf_token": csrf, "when": later}
        )
        earlier = (when - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        refused = await client.post(
            f"/requests/{request_id}/reschedule", data={"csrf_token": csrf, "when": earlier}
        )
        junk = await client.post(
            f"/requests/{request_id}/reschedule", data={"csrf_token": csrf, "when": "soon"}
        )
        by_author = await author.post(f"/requests/{request_id}/cancel", data={"csrf_token": acsrf})
        page = await client.get("/scheduled")
        other_account = await client.get("/scheduled?account=elsewhere&week=junk")
        new_day = when + timedelta(days=1)
        its_week = await client.get(f"/scheduled?account=default&week={new_day:%Y-%m-%d}")
    assert other_account.status_code == 200
    assert "Nothing scheduled." in other_account.text
    assert f'data-id="{request_id}"' not in other_account.text
    days = dict(re.findall(r'data-day="([0-9-]+)">(.*?)</section>', its_week.text, re.S))
    assert [d for d, body in days.items() if request_id in body] == [f"{new_day:%Y-%m-%d}"]
    assert moved.status_code == 303
    assert refused.headers["location"] == f"/requests/{request_id}"
    assert junk.status_code == 303
    assert by_author.status_code == 403
    due = await mod.deps.redis.zscore("writes:schedule", request_id)
    record = await mod.deps.decisions.get(request_id)
    assert record is not None
    assert record.state is S.APPROVED
    assert mod.deps.decisions.has_verified_approval(record)
    expected = datetime.strptime(later, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    assert due == expected.timestamp() * 1000
    assert f"{expected:%Y-%m-%d %H:%M}" in page.text


async def test_a_reply_to_our_own_post_names_it(mod: Harness) -> None:
    await mod.add_user("vi", Role.VIEWER)
    posted = await mod.pending(author="bot", text="Our spring sale starts today")
    ledger = mod.deps.decisions.ledger
    for to_state, source in ((S.APPROVED, S.PENDING), (S.SENDING, S.APPROVED)):
        await ledger.transition(posted, to_state, from_states=[source], actor="t", reason="t")
    await ledger.transition(
        posted, S.EXECUTED, from_states=[S.SENDING], actor="writer", reason="ok",
        result={"tweet_id": "1234567890"},
    )  # fmt: skip
    reply = await mod.pending(
        author="bot",
        payload={"text": "Also in blue!", "reply": {"in_reply_to_tweet_id": "1234567890"}},
    )
    async with mod.client() as client:
        await mod.login(client, "vi")
        queue = await client.get("/queue")
        detail = await client.get(f"/requests/{reply}")
    for page in (queue.text, detail.text):
        assert "Our spring sale starts today" in page
        assert "(our post)" in page
        assert "https://x.com/i/web/status/1234567890" in page


def test_describe_never_trusts_odd_ids() -> None:
    ctx = parse_context(context_of({"text": "x", "quote_tweet_id": "javascript:1"}, None))
    card = describe("tweet", ctx, state="pending", result=None, own_posts={}, url_template="{id}")
    assert card.kind == "quote"
    assert card.target is not None
    assert card.target.link is None
    assert parse_context("not json") == {}
    assert parse_context('["a"]') == {}


def test_word_diff_marks_words_and_keeps_markup_as_text() -> None:
    pieces = word_diff("launch on Monday <b>", "launch on Tuesday <b>")
    assert pieces == (
        ("same", "launch on "),
        ("del", "Monday"),
        ("ins", "Tuesday"),
        ("same", " <b>"),
    )
    assert "".join(t for op, t in pieces if op != "del") == "launch on Tuesday <b>"


async def test_detail_renders_the_diff_escaped(mod: Harness) -> None:
    await mod.add_user("ann", Role.AUTHOR)
    request_id = await mod.pending(author="ann", text="hello <i>world</i>")
    async with mod.client() as client:
        csrf = await mod.login(client, "ann")
        await client.post(
            f"/requests/{request_id}/edit",
            data={"csrf_token": csrf, "revision": "1", "text": "hello <script>x</script>"},
        )
        page = (await client.get(f"/requests/{request_id}")).text
    diff = page[page.index('data-diff="2"') :]
    assert "hello &lt;<del>i</del><ins>script</ins>&gt;<del>world</del><ins>x</ins>" in diff
    assert "<script>" not in page


async def test_v7_backfills_context_posted_ids_and_revisions(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    async with open_database(path) as db:
        await db.execute("DELETE FROM requests")
    # Re-run only the v7 step over a row as v6 left it: the columns are filled from the record.
    import aiosqlite

    async with aiosqlite.connect(path) as conn:
        await conn.executescript(
            "DROP INDEX requests_by_posted_id; DROP TABLE request_revisions;"
            " ALTER TABLE requests DROP COLUMN context; ALTER TABLE requests DROP COLUMN posted_id;"
            " ALTER TABLE requests DROP COLUMN content_hash;"
        )
        data = {
            "payload": {"text": "hi", "reply": {"in_reply_to_tweet_id": "42"}},
            "source": {"id": "42", "author": "carol", "text": "question"},
        }
        await conn.execute(
            "INSERT INTO requests (id, action, account, state, text, revision, created_at,"
            " updated_at, result, data) VALUES ('r1', 'tweet', 'a', 'executed', 'hi', 3, 1, 2,"
            " ?, ?)",
            (json.dumps({"tweet_id": "99"}), json.dumps(data)),
        )
        await conn.executescript(MIGRATIONS[6])
        await conn.commit()
        row = await (
            await conn.execute("SELECT context, posted_id, content_hash FROM requests")
        ).fetchone()
        revisions = await (await conn.execute("SELECT * FROM request_revisions")).fetchall()
    assert row is not None
    ctx = parse_context(row[0])
    assert ctx == {"reply_to": "42", "source_id": "42", "source_author": "carol",
                   "source_text": "question"}  # fmt: skip
    assert row[1] == "99"
    assert row[2] == ""
    assert [tuple(r[:3]) for r in revisions] == [("r1", 3, "hi")]


async def test_configured_handles_show_beside_their_account_names(mod: Harness) -> None:
    """A TOML account with `handle` shows as @handle (its name beside it), like connected ones."""
    writer = WriterSettings(
        accounts=[
            XAccountSettings(
                name="brand", user_id="42", access_token_secret="T", handle="brand_hq"
            ),
            XAccountSettings(name="plain", user_id="43", access_token_secret="T"),
        ]
    )
    ring = SealingKeyRing.parse(generate_key_ring("k1"), source="test")

    async def keys() -> SealingKeyRing:
        return ring

    async def no_secret(name: str) -> str | None:
        return None

    accounts = ConnectedAccounts(mod.redis, SealedTokenStore(mod.redis, keys))
    async with httpx.AsyncClient() as http:
        ui = XAccountsUi(accounts, writer, mod.redis, http, no_secret)
        shown = mod.deps.templates.globals["x_handles"]
        await ui.refresh_handles(shown)
    assert shown == {"brand": "@brand_hq"}
    await mod.add_user("vi", Role.VIEWER)
    await mod.pending(author="bot", text="from the brand", account="brand")
    async with mod.client() as client:
        await mod.login(client, "vi")
        queue = (await client.get("/queue")).text
    assert '<bdi>@brand_hq</bdi> <small class="muted">brand</small>' in queue
    with pytest.raises(ValueError, match="handle"):
        XAccountSettings(name="x", user_id="1", access_token_secret="T", handle="@no spaces")


async def test_start_fills_in_hashes_of_rows_projected_before_v7(mod: Harness) -> None:
    """Rows without a content hash get it from the ledger at start; gone ones are marked."""
    waiting = await mod.pending(author="bot", text="pending across the upgrade")
    gone = await mod.pending(author="bot", text="no longer in the ledger")
    await mod.redis.delete(f"writes:request:{gone}")
    await mod.deps.db.execute("UPDATE requests SET content_hash = ''")
    await mod.deps.history.prepare()
    rows = await mod.deps.db.fetchall("SELECT id, content_hash FROM requests ORDER BY id")
    hashes = {str(r[0]): str(r[1]) for r in rows}
    assert hashes == {waiting: await mod.content_hash(waiting), gone: "-"}
