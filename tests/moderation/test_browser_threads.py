"""The composer in real Chromium: a thread and a poll drafted, approved, posted at the fake X."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.moderation.harness import Harness
from tests.moderation.live import LiveApp, serve_live
from tests.moderation.test_browser import CHROMIUM, WAIT_MS, _login, _wait_state
from tests.writer.conftest import RunningSandbox
from tests.writer.test_threads import chain
from twitstack.core.config import Settings
from twitstack.moderation.roles import Role
from twitstack.writes.signing import public_key_to_base64

pytestmark = [pytest.mark.browser, pytest.mark.slow]
playwright_sync = pytest.importorskip("playwright.sync_api")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def _setup(harness: Harness) -> dict[str, Any]:
    await harness.add_user("mia", Role.MODERATOR)
    await harness.add_user("ann", Role.AUTHOR)
    return {}


@pytest.fixture
def fake_x() -> dict[str, RunningSandbox]:
    """Where the live app's writer puts the fake X it runs, for the test to inspect."""
    return {}


@pytest.fixture
def live(
    redis_url: str,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    fake_x: dict[str, RunningSandbox],
) -> Iterator[LiveApp]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    from tests.writer.harness import running_writer, writer_settings
    from twitstack.sandbox.xapi.config import XApiSandboxConfig
    from twitstack.sandbox.xapi.server import open_xapi_sandbox

    @asynccontextmanager
    async def extra(harness: Harness) -> AsyncIterator[Any]:
        async with open_xapi_sandbox(XApiSandboxConfig()) as fake:
            sandbox = RunningSandbox(fake.base_url, fake.state)
            fake_x["sandbox"] = sandbox
            key = public_key_to_base64(harness.deps.signer.public_key)
            settings = writer_settings(make_settings, fake.base_url, approval_public_keys=[key])
            async with running_writer(settings, harness.redis, sandbox) as writer:
                yield writer

    with serve_live(redis_url, tmp_path, _setup, extra=extra) as app:
        yield app


def _browser(pw: Any) -> Any:
    return pw.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


def _approve(browser: Any, base: str, request_id: str) -> Any:
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    _login(page, base, "mia")
    page.goto(f"{base}/requests/{request_id}")
    return page


def _submitted_id(page: Any, base: str) -> str:
    page.wait_for_selector("text=Submitted for review.")
    return str(page.url.removeprefix(f"{base}/requests/").split("?")[0])


def _posted(fake_x: dict[str, RunningSandbox], count: int) -> list[Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        posts = list(fake_x["sandbox"].state.content.posts.values())
        if len(posts) >= count:
            return posts
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} posts at the fake after 20 s")


def test_a_thread_composed_in_chromium_posts_three_chained_replies(
    live: LiveApp, fake_x: dict[str, RunningSandbox]
) -> None:
    """Three parts typed (one added with the button), approved once: three posts, chained."""
    ARTIFACTS.mkdir(exist_ok=True)
    base = live.base_url
    texts = ["A thread, part one", "Part two answers part one", "Part three ends it 🧵"]
    with playwright_sync.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            _login(page, base, "ann")
            page.goto(f"{base}/requests/new")
            page.fill("textarea[name=text]", texts[0])
            page.fill("li.part >> nth=0 >> textarea", texts[1])
            page.click("#add-part")
            page.fill("li.part >> nth=1 >> textarea", texts[2])
            # Each part's live counter is the server's count: the emoji weighs 2 (X's rule).
            counter = page.locator("li.part >> nth=1 >> .part-count")
            playwright_sync.expect(counter).to_have_text(
                re.compile(rf"^{len(texts[2]) + 1} / 280 weighted characters")
            )
            page.screenshot(path=str(ARTIFACTS / "composer-thread.png"), full_page=True)
            page.click("button:has-text('Submit for review')")
            request_id = _submitted_id(page, base)
            assert page.locator("li.thread-part").count() == 3

            moderator = _approve(browser, base, request_id)
            moderator.click("button:has-text('Approve revision 1')")
            moderator.wait_for_url(f"{base}/queue")
            _wait_state(live, request_id, "executed")
            moderator.goto(f"{base}/requests/{request_id}")
            assert moderator.locator("a.live-part").count() == 3
            moderator.screenshot(path=str(ARTIFACTS / "thread-executed.png"), full_page=True)
        finally:
            browser.close()
    _posted(fake_x, 3)
    chain(fake_x["sandbox"], texts)


def test_a_poll_composed_in_chromium_reaches_x_with_its_options(
    live: LiveApp, fake_x: dict[str, RunningSandbox]
) -> None:
    """Two options and a duration typed: X receives exactly that poll object."""
    base = live.base_url
    with playwright_sync.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            _login(page, base, "ann")
            page.goto(f"{base}/requests/new")
            page.fill("textarea[name=text]", "Which colour for the launch?")
            page.fill("input[name=poll_option] >> nth=0", "Red")
            page.fill("input[name=poll_option] >> nth=1", "Blue")
            page.fill("input[name=poll_minutes]", "30")
            page.click("button:has-text('Submit for review')")
            request_id = _submitted_id(page, base)
            moderator = _approve(browser, base, request_id)
            assert moderator.locator("#poll li").count() == 2
            moderator.click("button:has-text('Approve revision 1')")
            moderator.wait_for_url(f"{base}/queue")
            _wait_state(live, request_id, "executed")
        finally:
            browser.close()
    [post] = _posted(fake_x, 1)
    assert post.body == {
        "text": "Which colour for the launch?",
        "poll": {"options": ["Red", "Blue"], "duration_minutes": 30},
    }
