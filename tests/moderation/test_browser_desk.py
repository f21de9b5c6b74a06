"""The review desk in real Chromium: context on cards, bulk work, diffs, the one counting rule,
retry after X refused, the schedule and its week view, and every page at 390 px."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.moderation.harness import Harness
from tests.moderation.live import LiveApp, serve_live
from tests.moderation.test_browser import CHROMIUM, _login, _wait_state, _writer_extra
from twitstack.core.config import Settings
from twitstack.moderation.roles import Role
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.text import tweet_weighted_length

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WAIT_MS = 15_000
POST_URL = "http://sandbox.test/_sandbox/posts/{id}"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
BULK = 20
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _shot(page: Any, name: str, *, full: bool = True) -> None:
    """Keep what the page looked like (docs/screenshots/make.py collects the desk-* set)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"desk-{name}.png"), full_page=full)


playwright_sync = pytest.importorskip("playwright.sync_api")

# Texts where a naive count (code points, UTF-16 units, URL length) and X's weighting differ.
HOSTILE = [
    "plain ascii",
    "https://example.com/a/very/long/path/that/is/much/longer/than/twenty-three?q=1",
    "東京で会いましょう",
    "family 👨‍👩‍👧‍👦 and flags 🇯🇵🇫🇷",
    "e\u0301 combining vs é precomposed",
    "emoji skin tone 👍🏽 twice 👍🏽",
    "example.com and www.example.org without scheme",
    "tab\tand\nnewline and \u200b zero width",
    "한국어 텍스트 and ελληνικά",
    "<script>alert(1)</script> & &amp;",
    "𝕏 mathematical letters 𝔸𝔹",
    "x" * 290,
]


async def _setup(harness: Harness) -> dict[str, Any]:
    for name, role in (("mia", Role.MODERATOR), ("raj", Role.MODERATOR), ("ann", Role.AUTHOR)):
        await harness.add_user(name, role)
    await harness.add_user("admin", Role.ADMIN)
    reply = await harness.pending(
        author="scraper",
        payload={"text": "Thanks, we are on it!", "reply": {"in_reply_to_tweet_id": "1111"}},
        source={"id": "1111", "author": "carol", "author_id": "77", "text": "My order is late"},
    )
    reply_other = await harness.pending(
        author="scraper",
        payload={"text": "Thanks, we are on it!", "reply": {"in_reply_to_tweet_id": "2222"}},
        source={"id": "2222", "author": "dave", "author_id": "88", "text": "Where is my refund"},
    )
    dm_known = await harness.pending(
        author="scraper",
        action=WriteAction.DM,
        payload={"recipient_id": "77", "text": "Hi Carol, DM us your order number"},
        source={"id": "1111", "author": "carol", "author_id": "77", "text": "My order is late"},
    )
    dm_unknown = await harness.pending(
        author="ann", action=WriteAction.DM, payload={"recipient_id": "9999", "text": "Hello"}
    )
    quote = await harness.pending(
        author="ann", payload={"text": "Worth reading", "quote_tweet_id": "3333"}
    )
    return {
        "reply": reply,
        "reply_other": reply_other,
        "dm_known": dm_known,
        "dm_unknown": dm_unknown,
        "quote": quote,
    }


@pytest.fixture
def live(
    redis_url: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> Iterator[LiveApp]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    with serve_live(
        redis_url,
        tmp_path,
        _setup,
        extra=_writer_extra(make_settings),
        queue_refresh_interval_s=0.5,
        post_url_template=POST_URL,
    ) as app:
        yield app


def _browser(pw: Any) -> Any:
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


def _page(browser: Any, width: int = 1280) -> Any:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(WAIT_MS)
    return page


def _wait_paused(page: Any) -> None:
    """Until a refresh tick has run (since now) and left the ticked rows alone."""
    page.evaluate("document.getElementById('live').textContent = ''")
    page.wait_for_function("() => document.getElementById('live').textContent.includes('paused')")


def _pending(live: LiveApp, text: str, **extra: Any) -> str:
    async def add(harness: Harness) -> str:
        return await harness.pending(author="ann", text=text, **extra)

    result: str = live.portal(add)
    return result


def _edit(live: LiveApp, request_id: str, text: str) -> None:
    async def edit(harness: Harness) -> None:
        user = await harness.deps.users.get(harness.users["ann"])
        assert user is not None
        await harness.deps.decisions.edit(
            request_id, {"text": text}, expected_revision=1, user=user
        )

    live.portal(edit)


def _audit_actions(live: LiveApp) -> list[tuple[str, str]]:
    async def read(harness: Harness) -> list[tuple[str, str]]:
        rows = await harness.deps.db.fetchall("SELECT action, target FROM audit_log ORDER BY id")
        return [(str(r[0]), str(r[1])) for r in rows]

    result: list[tuple[str, str]] = live.portal(read)
    return result


def test_cards_show_context_and_bulk_approval_binds_to_what_was_shown(live: LiveApp) -> None:
    """Replies say what they answer, DMs who they go to; 20 ticked rows are approved at once,
    a row changed after the page was rendered is refused, not approved."""
    ids = live.info
    base = live.base_url
    bulk = [_pending(live, f"bulk post number {n} of the morning") for n in range(BULK)]
    changed = _pending(live, "this one is edited after the page is shown")
    with playwright_sync.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = _page(browser)
            _login(page, base, "mia")
            page.wait_for_selector(f"tr[data-id='{changed}']")
            # Two identical replies: each card says which tweet (and whose words) it answers.
            first = page.locator(f"tr[data-id='{ids['reply']}'] .context")
            assert "reply" in first.inner_text()
            assert "My order is late" in first.inner_text()
            assert "@carol" in first.inner_text()
            other = page.locator(f"tr[data-id='{ids['reply_other']}'] .context")
            assert "Where is my refund" in other.inner_text()
            assert "@dave" in other.inner_text()
            dm_row = page.locator(f"tr[data-id='{ids['dm_known']}'] .context").inner_text()
            assert "@carol" in dm_row
            unknown = page.locator(f"tr[data-id='{ids['dm_unknown']}'] .context").inner_text()
            assert "recipient id 9999" in unknown
            assert "handle unknown" in unknown
            quote = page.locator(f"tr[data-id='{ids['quote']}'] .context")
            assert "quote" in quote.inner_text()
            assert quote.locator("a").get_attribute("href") == POST_URL.replace("{id}", "3333")
            _shot(page, "01-queue-context")
            page.goto(f"{base}/requests/{ids['reply']}")
            assert "My order is late" in page.inner_text("#card-context")
            _shot(page, "02-detail-reply-context")
            page.goto(f"{base}/queue?sort=oldest")

            # Tick the 20 bulk rows and the one that will change once the page is shown.
            for request_id in [*bulk, changed]:
                page.check(f"tr[data-id='{request_id}'] input[name=pick]")
            _shot(page, "03-bulk-selected", full=False)
            # While rows are ticked the live refresh leaves the rows as drawn (a newcomer
            # waits), so every tick still names the revision it showed.
            newcomer = _pending(live, "arrives while rows are ticked")
            _wait_paused(page)
            assert page.locator(f"tr[data-id='{newcomer}']").count() == 0
            _edit(live, changed, "edited behind the moderator's back")
            _wait_paused(page)
            page.click("#bulk-approve")
            page.wait_for_selector("#bulk-results")
            results = page.locator("#bulk-results li")
            assert results.count() == BULK + 1
            heading = page.inner_text("h1")
            assert heading.startswith(f"Approved {BULK} of {BULK + 1}"), heading
            refused = page.locator(f"#bulk-results li[data-id='{changed}']")
            assert refused.get_attribute("data-ok") == "no"
            assert "changed" in refused.inner_text()
            assert "bulk post number 0 of the morning" in page.inner_text("#bulk-results")
            _shot(page, "04-bulk-results")
            for request_id in bulk:
                _wait_state(live, request_id, S.EXECUTED.value)
            assert _state_of(live, changed) == S.PENDING.value
            approvals = [t for a, t in _audit_actions(live) if a == "request.approve"]
            assert sorted(approvals) == sorted(bulk)
        finally:
            browser.close()


def _state_of(live: LiveApp, request_id: str) -> str | None:
    async def read(harness: Harness) -> str | None:
        record = await harness.deps.decisions.get(request_id)
        return None if record is None else record.state.value

    result: str | None = live.portal(read)
    return result


def test_approve_from_the_list_and_reject_with_a_preset_reason(live: LiveApp) -> None:
    base = live.base_url
    one = _pending(live, "approve me straight from the list")
    two = _pending(live, "reject me with a preset reason")
    with playwright_sync.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = _page(browser)
            _login(page, base, "mia")
            page.check("#pick-all")
            boxes = page.locator("input[name=pick]")
            assert boxes.count() >= 2
            assert all(boxes.nth(i).is_checked() for i in range(boxes.count()))
            page.uncheck("#pick-all")
            assert not any(boxes.nth(i).is_checked() for i in range(boxes.count()))
            page.click(f"tr[data-id='{one}'] button[name=approve_one]")
            page.wait_for_selector("text=«approve me straight from the list»")
            _wait_state(live, one, S.EXECUTED.value)
            page.goto(f"{base}/requests/{two}")
            page.select_option("#reject-preset", label="Duplicate of another post")
            _shot(page, "05-reject-preset-reason")
            page.click("button:has-text('Reject')")
            page.wait_for_selector("text=Rejected «reject me with a preset reason».")
            _wait_state(live, two, S.REJECTED.value)
            page.goto(f"{base}/history?tab=rejected")
            assert "Duplicate of another post" in page.inner_text("table")
            # Executed: its post id, linked under the configured base URL.
            page.goto(f"{base}/requests/{one}")
            link = page.get_attribute("#view-post", "href") or ""
            assert link.startswith("http://sandbox.test/_sandbox/posts/"), link
            assert page.locator("#posted code").inner_text() in link
            _shot(page, "06-executed-post-link")
        finally:
            browser.close()


def test_edit_shows_the_servers_count_a_preview_warnings_and_a_safe_diff(live: LiveApp) -> None:
    base = live.base_url
    request_id = _pending(live, "Our launch is on Monday at noon")
    with playwright_sync.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = _page(browser)
            _login(page, base, "mia")
            page.goto(f"{base}/requests/{request_id}/edit")
            counter = page.locator("#edit-count")
            for text in HOSTILE:
                page.fill("#edit-text", text)
                page.wait_for_function(
                    "t => { const c = document.getElementById('edit-count');"
                    " return c.dataset.pending === '' && c.dataset.text === t; }",
                    arg=text,
                )
                shown = int(counter.get_attribute("data-weighted") or "-1")
                assert shown == tweet_weighted_length(text), (text, shown)
                assert counter.inner_text().startswith(f"{shown} / 280")
                assert page.inner_text("#edit-preview") == text
            page.fill("#edit-text", "Buy $AAA and $BBB https://example.com")
            page.wait_for_selector("#edit-warnings li:has-text('cashtags')")
            assert "url price" in page.inner_text("#edit-warnings")
            _shot(page, "07-edit-preview-warnings")
            hostile = 'Our launch is on <img src=x onerror="document.title=1"> Tuesday at noon'
            page.fill("#edit-text", hostile)
            page.click("button:has-text('Save revision')")
            page.wait_for_selector("text=Saved as revision 2")
            diff = page.locator(".diff[data-diff='2']")
            assert diff.locator("del").first.inner_text() == "Monday"
            assert "Tuesday" in " ".join(diff.locator("ins").all_inner_texts())
            assert "<img" in diff.inner_text()
            assert diff.locator("img").count() == 0
            assert page.title() != "1"
            _shot(page, "08-revision-diff")
        finally:
            browser.close()


def _fail_by_x(live: LiveApp, text: str) -> str:
    """A reply to a post that does not exist: X (the sandbox) refuses it permanently."""

    async def add(harness: Harness) -> str:
        request = WriteRequest(
            action=WriteAction.TWEET,
            payload={"text": text, "reply": {"in_reply_to_tweet_id": "4040404040"}},
            author="ann",
        )
        await harness.deps.decisions.ledger.record(request, actor="ann")
        await harness.deps.history.catch_up()
        raj = await harness.deps.users.get(harness.users["raj"])
        assert raj is not None
        await harness.deps.decisions.approve(
            request.id,
            expected_revision=1,
            expected_content_hash=request.content_hash(),
            user=raj,
        )
        return request.id

    result: str = live.portal(add)
    return result


def test_a_failed_request_says_what_x_said_and_can_be_retried(live: LiveApp) -> None:
    base = live.base_url
    failed = _fail_by_x(live, "answering a post that is gone")
    _wait_state(live, failed, S.FAILED.value)
    with playwright_sync.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = _page(browser)
            _login(page, base, "mia")
            page.goto(f"{base}/requests/{failed}")
            said = page.inner_text("#x-said")
            assert "deleted or not visible to you" in said, said
            assert page.locator("text=approving sends it anyway").count() == 0
            assert page.locator("#copy").is_visible()
            _shot(page, "09-failed-x-said-retry")
            page.goto(f"{base}/history?tab=failed")
            assert "X said:" in page.inner_text("table")
            page.goto(f"{base}/requests/{failed}")
            page.click("#retry")
            page.wait_for_selector("text=Retry submitted as a new request")
            new_id = page.url.rsplit("/", 1)[-1]
            assert new_id != failed
            assert _state_of(live, new_id) == S.PENDING.value
            assert _state_of(live, failed) == S.FAILED.value
            assert ("request.retry", new_id) in _audit_actions(live)
            assert "answering a post that is gone" in page.inner_text("article.tweet")
        finally:
            browser.close()


def _scheduled(live: LiveApp, text: str, when: datetime) -> str:
    async def add(harness: Harness) -> str:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        raw = json.dumps({"action": "tweet", "payload": {"text": text}, "not_before": stamp})
        ann = await harness.deps.users.get(harness.users["ann"])
        raj = await harness.deps.users.get(harness.users["raj"])
        assert ann is not None
        assert raj is not None
        request, _ = await harness.deps.decisions.create(raw.encode(), user=ann)
        await harness.deps.decisions.approve(
            request.id,
            expected_revision=1,
            expected_content_hash=await harness.content_hash(request.id),
            user=raj,
        )
        return request.id

    result: str = live.portal(add)
    return result


def test_scheduled_posts_on_the_week_view_cancel_and_reschedule(live: LiveApp) -> None:
    base = live.base_url
    soon = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=30, second=0)
    soon = soon.replace(microsecond=0)
    keep = _scheduled(live, "goes out tomorrow morning", soon)
    move = _scheduled(live, "moved to the day after", soon + timedelta(hours=1))
    drop = _scheduled(live, "cancelled before it goes out", soon + timedelta(hours=2))
    with playwright_sync.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = _page(browser)
            _login(page, base, "mia")
            week = (soon - timedelta(days=soon.weekday())).strftime("%Y-%m-%d")
            page.goto(f"{base}/scheduled?week={week}")
            day = page.locator(f".calendar .day[data-day='{soon:%Y-%m-%d}']")
            for request_id in (keep, move, drop):
                assert day.locator(f".slot[data-id='{request_id}']").count() == 1
            assert "09:30" in day.locator(f".slot[data-id='{keep}']").inner_text()
            _shot(page, "10-scheduled-week")

            later = soon + timedelta(days=1, hours=2)
            row = page.locator(f"#scheduled tr[data-id='{move}']")
            row.locator("input[name=when]").fill(later.strftime("%Y-%m-%dT%H:%M"))
            row.locator("button:has-text('Reschedule')").click()
            page.wait_for_selector("text=Rescheduled «moved to the day after»")
            page.goto(f"{base}/scheduled?week={later - timedelta(days=later.weekday()):%Y-%m-%d}")
            moved_day = page.locator(f".calendar .day[data-day='{later:%Y-%m-%d}']")
            assert moved_day.locator(f".slot[data-id='{move}']").count() == 1
            assert _state_of(live, move) == S.APPROVED.value

            # Earlier than the time the approval signed: refused, the approval stands.
            page.goto(f"{base}/scheduled")
            row = page.locator(f"#scheduled tr[data-id='{keep}']")
            row.locator("input[name=when]").fill(
                (soon - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
            )
            row.locator("button:has-text('Reschedule')").click()
            page.wait_for_selector("text=needs a new approval")

            page.goto(f"{base}/scheduled")
            page.locator(f"#scheduled tr[data-id='{drop}'] button:has-text('Cancel')").click()
            page.wait_for_selector("text=Cancelled «cancelled before it goes out»")
            assert page.locator(f"#scheduled tr[data-id='{drop}']").count() == 0
            _wait_state(live, drop, S.REJECTED.value)
            actions = _audit_actions(live)
            assert ("request.reschedule", move) in actions
            assert ("request.reject", drop) in actions
        finally:
            browser.close()


PAGES = [
    "/queue",
    "/queue?sort=oldest",
    "/scheduled",
    "/history",
    "/history?tab=failed",
    "/accounts",
    "/requests/new",
    "/dead-letters",
    "/users",
    "/apikeys",
    "/audit",
    "/no-such-page",
]


def test_every_page_fits_390_px_and_the_menu_collapses(live: LiveApp) -> None:
    ids = live.info
    base = live.base_url
    long_word = _pending(live, "averyveryverylongwordwithoutanyspaces" * 8 + " https://example.com")
    with playwright_sync.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = _page(browser, width=390)
            page.goto(f"{base}/login")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            _login(page, base, "admin")
            nav = page.locator("header.top nav")
            assert not nav.is_visible()
            _shot(page, "11-mobile-queue")
            page.click("label.nav-toggle-label")
            assert nav.is_visible()
            _shot(page, "12-mobile-menu", full=False)
            request_pages = [
                f"/requests/{ids['reply']}",
                f"/requests/{ids['dm_known']}",
                f"/requests/{long_word}",
                f"/requests/{long_word}/edit",
            ]
            widths = {}
            for path in [*PAGES, *request_pages]:
                page.goto(f"{base}{path}")
                page.wait_for_load_state("load")
                widths[path] = page.evaluate("document.documentElement.scrollWidth")
            assert len(widths) == len(PAGES) + len(request_pages)
            assert {path: width for path, width in widths.items() if width > 390} == {}
        finally:
            browser.close()


def test_finish_favicon_404_header_and_logged_out(live: LiveApp) -> None:
    base = live.base_url
    with playwright_sync.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = _page(browser)
            missing: list[str] = []
            page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
            _login(page, base, "admin")
            icon = page.request.get(f"{base}/favicon.ico")
            assert icon.status == 200
            assert icon.headers["content-type"] == "image/svg+xml"
            linked = page.get_attribute("link[rel=icon]", "href")
            assert page.request.get(f"{base}{linked}").status == 200
            assert page.inner_text(".who-name") == "admin"
            assert page.inner_text(".role-badge") == "Administrator"
            assert missing == []
            response = page.goto(f"{base}/nothing/here")
            assert response is not None
            assert response.status == 404
            assert page.inner_text("h1") == "Page not found"
            _shot(page, "13-not-found", full=False)
            assert page.locator("link[rel=stylesheet]").count() == 1
            page.click("button:has-text('Log out')")
            page.wait_for_selector("#logged-out")
            assert "You are logged out" in page.inner_text("#logged-out")
            _shot(page, "14-logged-out", full=False)
            # Only a fresh login page says so: the flag shows a fixed sentence, nothing else.
            page.goto(f"{base}/login")
            assert page.locator("#logged-out").count() == 0
        finally:
            browser.close()
