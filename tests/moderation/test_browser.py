"""The moderation UI in real Chromium, with the writer executing against the fake X API."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.moderation.harness import PASSWORD, Harness
from tests.moderation.live import LiveApp, serve_live
from twitstack.core.config import Settings
from twitstack.moderation.roles import Role
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus
from twitstack.writes.signing import public_key_to_base64

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT_MS = 15_000

playwright_sync = pytest.importorskip("playwright.sync_api")


async def _setup(harness: Harness) -> dict[str, Any]:
    for name, role in (("mia", Role.MODERATOR), ("raj", Role.MODERATOR), ("ann", Role.AUTHOR)):
        await harness.add_user(name, role)
    return {}


def _writer_extra(make_settings: Callable[..., Settings]) -> Any:
    """Run the fake X API and a WriterService trusting the moderation signer, on the app loop."""
    from tests.writer.conftest import RunningSandbox
    from tests.writer.harness import running_writer, writer_settings
    from twitstack.sandbox.xapi.config import XApiSandboxConfig
    from twitstack.sandbox.xapi.server import open_xapi_sandbox

    @asynccontextmanager
    async def extra(harness: Harness) -> AsyncIterator[Any]:
        async with open_xapi_sandbox(XApiSandboxConfig()) as fake:
            sandbox = RunningSandbox(fake.base_url, fake.state)
            settings = writer_settings(
                make_settings,
                fake.base_url,
                approval_public_keys=[public_key_to_base64(harness.deps.signer.public_key)],
            )
            async with running_writer(settings, harness.redis, sandbox) as writer:
                yield writer

    return extra


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
    ) as app:
        yield app


def _state(live: LiveApp, request_id: str) -> str | None:
    async def read(harness: Harness) -> str | None:
        record = await harness.deps.decisions.get(request_id)
        return None if record is None else record.state.value

    result: str | None = live.portal(read)
    return result


def _wait_state(live: LiveApp, request_id: str, state: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _state(live, request_id) == state:
            return
        time.sleep(0.1)
    raise AssertionError(
        f"{request_id} not {state} after {timeout_s} s: {_state(live, request_id)}"
    )


def _push(live: LiveApp, message: dict[str, Any]) -> None:
    async def push(harness: Harness) -> None:
        await harness.redis.rpush(keys.WRITE_QUEUE, json.dumps(message))

    live.portal(push)


def _login(page: Any, base_url: str, name: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/queue")


def test_moderators_review_edit_approve_and_reject_in_chromium(live: LiveApp) -> None:
    """Queue updates live; edit + approve reaches X via the writer; rejection needs a reason."""
    ARTIFACTS.mkdir(exist_ok=True)
    base = live.base_url
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(WAIT_MS)
            _login(page, base, "mia")
            assert page.locator("tr[data-id]").count() == 0

            # A producer pushes onto write_queue; the writer records it; the page shows it
            # without a reload (the poller swaps the rows in).
            _push(
                live,
                {
                    "id": "req-browser-1",
                    "action": "tweet",
                    "author": "ann",
                    "payload": {"text": "Hello from the moderation queue"},
                },
            )
            _push(
                live,
                {
                    "id": "req-browser-2",
                    "action": "tweet",
                    "author": "ann",
                    "payload": {"text": "Buy $AAA and $BBB https://example.com"},
                },
            )
            page.wait_for_selector("tr[data-id='req-browser-1']")
            page.wait_for_selector("tr[data-id='req-browser-2']")
            page.wait_for_selector("#pending-total:text-is('2')")
            page.screenshot(path=str(ARTIFACTS / "moderation-queue.png"), full_page=True)

            page.click("tr[data-id='req-browser-1'] a")
            page.wait_for_url(f"{base}/requests/req-browser-1")
            page.click("text=Edit")
            page.fill("textarea[name=text]", "Hello from the moderation queue, edited")
            page.click("button:has-text('Save revision')")
            page.wait_for_selector("text=Saved as revision 2")
            page.screenshot(path=str(ARTIFACTS / "moderation-detail.png"), full_page=True)
            # Having edited it, mia is one of its authors: someone else must approve.
            assert page.locator("#own-note").count() == 1
            assert page.locator("button:has-text('Approve')").count() == 0

            # A second moderator approves the revision mia wrote, then rejects the other one.
            other = browser.new_page()
            other.set_default_timeout(WAIT_MS)
            _login(other, base, "raj")
            other.goto(f"{base}/requests/req-browser-1")
            other.click("button:has-text('Approve revision 2')")
            other.wait_for_url(f"{base}/queue")
            _wait_state(live, "req-browser-1", ModerationStatus.EXECUTED.value)
            page.goto(f"{base}/history?tab=executed")
            assert page.locator("a:has-text('view post')").count() == 1
            page.screenshot(path=str(ARTIFACTS / "moderation-history.png"), full_page=True)

            other.goto(f"{base}/requests/req-browser-2")
            assert other.locator("text=cashtags").count() >= 1
            other.fill("textarea[name=reason]", "two cashtags, X would refuse it")
            other.click("button:has-text('Reject')")
            other.wait_for_url(f"{base}/queue")
            _wait_state(live, "req-browser-2", ModerationStatus.REJECTED.value)

            # The author of a request cannot approve it: raj drafts one, and sees no button.
            other.goto(f"{base}/requests/new")
            other.fill("textarea[name=text]", "Drafted by raj himself")
            other.click("button:has-text('Submit for review')")
            other.wait_for_selector("text=Submitted for review.")
            assert other.locator("#own-note").count() == 1
            assert other.locator("button:has-text('Approve')").count() == 0
            other.screenshot(path=str(ARTIFACTS / "moderation-own-request.png"), full_page=True)
        finally:
            browser.close()
