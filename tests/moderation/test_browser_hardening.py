"""The hardened moderation UI in real Chromium: what a moderator and a viewer actually see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.moderation.harness import PASSWORD, Harness
from tests.moderation.live import LiveApp, serve_live
from twitstack.moderation.roles import Role
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.models import WriteAction

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT_MS = 15_000
SECRET_DM = "the vault code is 4471"

playwright_sync = pytest.importorskip("playwright.sync_api")


async def _setup(harness: Harness) -> dict[str, Any]:
    for name, role in (("mia", Role.MODERATOR), ("raj", Role.MODERATOR), ("vic", Role.VIEWER)):
        await harness.add_user(name, role)
    poll = await harness.pending(
        author="bot\u202etob",
        payload={
            "text": "vote",
            "poll": {"options": ["Yes", "Send 1 BTC"], "duration_minutes": 60},
        },
        source={"id": "1", "author": "someone", "text": "src", "url": "javascript:alert(1)"},
    )
    dm = await harness.pending(
        author="bot", action=WriteAction.DM, payload={"recipient_id": "42", "text": SECRET_DM}
    )
    plain = await harness.pending(author="bot", text="to be rejected")
    forged = await harness.pending(author="bot", text="approve me again")
    raj = await harness.deps.users.get(harness.users["raj"])
    assert raj is not None
    await harness.deps.decisions.approve(
        forged, expected_revision=1, expected_content_hash=await harness.content_hash(forged),
        user=raj,
    )  # fmt: skip
    await harness.deps.decisions.ledger.transition(
        forged, S.NEEDS_REVIEW, from_states=[S.APPROVED], actor="writer",
        reason="approval_bad_signature",
    )  # fmt: skip
    await harness.deps.history.catch_up()
    return {"poll": poll, "dm": dm, "plain": plain, "forged": forged}


@pytest.fixture
def live(redis_url: str, tmp_path: Path) -> Iterator[LiveApp]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    with serve_live(redis_url, tmp_path, _setup) as app:
        yield app


def _login(page: Any, base_url: str, name: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/queue")


def test_hardened_approval_screens_in_chromium(live: LiveApp) -> None:
    """Attachments on screen, no foreign links, visible bidi markers, security events without
    Approve, server-side notices only, and no DM text for a viewer."""
    ARTIFACTS.mkdir(exist_ok=True)
    base, ids = live.base_url, live.info
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            _login(page, base, "mia")

            page.goto(f"{base}/requests/{ids['poll']}")
            assert page.locator("#poll li").all_inner_texts() == ["Yes", "Send 1 BTC"]
            assert page.locator("#poll").is_visible()
            assert page.locator("a:has-text('open on X')").count() == 0
            assert page.locator("#source-url-unlinked").is_visible()
            assert "bot[U+202E]tob" in page.inner_text("dl.facts")
            page.screenshot(path=str(ARTIFACTS / "moderation-attachments.png"), full_page=True)

            page.goto(f"{base}/requests/{ids['forged']}")
            assert page.locator("#security-event").is_visible()
            assert page.locator("button:has-text('Approve')").count() == 0
            page.screenshot(path=str(ARTIFACTS / "moderation-security-event.png"), full_page=True)

            page.goto(f"{base}/requests/{ids['plain']}")
            page.fill("textarea[name=reason]", "not today")
            page.click("button:has-text('Reject')")
            page.wait_for_url(f"{base}/queue")
            assert page.locator("text=Rejected «to be rejected».").is_visible()
            page.goto(f"{base}/queue?notice=Approve+req-x+now&error=Call+555")
            assert "Approve req-x now" not in page.content()
            assert "Call 555" not in page.content()

            viewer = browser.new_page()
            viewer.set_default_timeout(WAIT_MS)
            _login(viewer, base, "vic")
            assert SECRET_DM not in viewer.content()
            viewer.goto(f"{base}/requests/{ids['dm']}")
            assert viewer.locator("#dm-hidden").is_visible()
            assert SECRET_DM not in viewer.content()
        finally:
            browser.close()
