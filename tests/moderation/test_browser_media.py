"""Chromium: an author uploads an image in the New form, a moderator sees its thumbnail and
the missing-alt-text warning, approves, and the fake X receives the post with the image."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.moderation.harness import Harness
from tests.moderation.live import LiveApp, serve_live
from tests.moderation.test_browser import ARTIFACTS, CHROMIUM, WAIT_MS, _login
from tests.support.media_files import h264_mp4, png
from twitstack.core.config import Settings
from twitstack.moderation.media_ranges import MAX_RANGE_BYTES
from twitstack.moderation.roles import Role
from twitstack.writes.signing import public_key_to_base64

pytestmark = [pytest.mark.browser, pytest.mark.slow]
playwright_sync = pytest.importorskip("playwright.sync_api")


async def _setup(harness: Harness) -> dict[str, Any]:
    await harness.add_user("mia", Role.MODERATOR)
    await harness.add_user("ann", Role.AUTHOR)
    return {}


@pytest.fixture
def live_x(
    redis_url: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> Iterator[tuple[LiveApp, dict[str, Any]]]:
    """The app, plus a writer and the fake X sharing its media store (one data_dir)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    from tests.writer.conftest import RunningSandbox
    from tests.writer.harness import running_writer, writer_settings
    from twitstack.sandbox.xapi.config import XApiSandboxConfig
    from twitstack.sandbox.xapi.server import open_xapi_sandbox

    seen: dict[str, Any] = {}

    @asynccontextmanager
    async def extra(harness: Harness) -> AsyncIterator[Any]:
        async with open_xapi_sandbox(XApiSandboxConfig()) as fake:
            seen["x"] = fake.state
            settings = writer_settings(
                lambda **kw: make_settings(data_dir=tmp_path, **kw),
                fake.base_url,
                approval_public_keys=[public_key_to_base64(harness.deps.signer.public_key)],
            )
            async with running_writer(
                settings, harness.redis, RunningSandbox(fake.base_url, fake.state)
            ) as writer:
                yield writer

    with serve_live(redis_url, tmp_path, _setup, extra=extra, queue_refresh_interval_s=0.5) as app:
        yield app, seen


def test_upload_preview_warn_approve_post(
    live_x: tuple[LiveApp, dict[str, Any]], tmp_path: Path
) -> None:
    """The whole path through the browser, ending at the fake X with the image attached."""
    live, seen = live_x
    base = live.base_url
    image = png(8, 8, seed=42)
    image_path = tmp_path / "upload.png"
    image_path.write_bytes(image)
    sha = hashlib.sha256(image).hexdigest()
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            author = browser.new_page(viewport={"width": 1280, "height": 900})
            author.set_default_timeout(WAIT_MS)
            _login(author, base, "ann")
            author.goto(f"{base}/requests/new")
            author.fill("textarea[name=text]", "A picture from the browser")
            author.set_input_files("#media1", str(image_path))
            author.click("button:has-text('Submit for review')")
            author.wait_for_selector("text=Submitted for review.")
            detail_url = author.url

            moderator = browser.new_page(viewport={"width": 1280, "height": 900})
            moderator.set_default_timeout(WAIT_MS)
            _login(moderator, base, "mia")
            moderator.goto(detail_url)
            thumb = moderator.locator(f"img.thumb[src='/media/{sha}']")
            thumb.wait_for()
            # The thumbnail really loaded (decoded by the browser), not a broken image. Being
            # in the DOM is not being loaded: wait (bounded) until the browser finished with
            # it, loaded or broken, then look at what it decoded.
            thumb_selector = f"img.thumb[src='/media/{sha}']"
            moderator.wait_for_function(
                "sel => { const img = document.querySelector(sel); return img && img.complete; }",
                arg=thumb_selector,
                timeout=WAIT_MS,
            )
            assert thumb.evaluate("img => img.naturalWidth") == 8
            assert moderator.locator("text=missing alt text").count() == 1
            assert moderator.locator(".no-alt").count() == 1
            moderator.screenshot(path=str(ARTIFACTS / "moderation-media.png"), full_page=True)
            moderator.click("button:has-text('Approve')")
            moderator.wait_for_url(f"{base}/queue")
        finally:
            browser.close()
    deadline = time.monotonic() + 20
    posts: list[Any] = []
    while time.monotonic() < deadline and not posts:  # bounded wait for the writer
        posts = [p for p in seen["x"].content.posts.values()
                 if p.text == "A picture from the browser"]  # fmt: skip
        time.sleep(0.1)
    assert len(posts) == 1
    (media_id,) = posts[0].media_ids
    assert seen["x"].media.items[media_id].sha256 == sha


def test_video_poster_frame_loads_through_ranges(
    redis_url: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    """An MP4 uploaded in the New form shows on the review page as a `<video>` that reaches
    HAVE_METADATA with its real size, fetched with Range requests answered 206 of at most
    MAX_RANGE_BYTES each (the file is larger, so one answer never carries it whole)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    video = h264_mp4(640, 480, frames=14, seed=9)  # about 6.5 MB, header first
    assert len(video) > MAX_RANGE_BYTES
    video_path = tmp_path / "clip.mp4"
    video_path.write_bytes(video)
    sha = hashlib.sha256(video).hexdigest()
    answers: list[tuple[int, str | None, str | None]] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        serve_live(redis_url, tmp_path, _setup) as live,
        playwright_sync.sync_playwright() as pw,
    ):
        base = live.base_url
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            author = browser.new_page()
            author.set_default_timeout(WAIT_MS)
            _login(author, base, "ann")
            author.goto(f"{base}/requests/new")
            author.fill("textarea[name=text]", "A clip from the browser")
            author.set_input_files("#media1", str(video_path))
            author.fill("[name=alt1]", "grey blocks")
            author.click("button:has-text('Submit for review')")
            author.wait_for_selector("text=Submitted for review.")
            detail_url = author.url

            moderator = browser.new_page(viewport={"width": 1280, "height": 900})
            moderator.set_default_timeout(WAIT_MS)
            moderator.on(
                "response",
                lambda r: (
                    answers.append(
                        (r.status, r.request.headers.get("range"), r.headers.get("content-range"))
                    )
                    if r.url.endswith(f"/media/{sha}")
                    else None
                ),
            )
            _login(moderator, base, "mia")
            moderator.goto(detail_url)
            player = moderator.locator(f"video.thumb[src='/media/{sha}']")
            player.wait_for()
            moderator.wait_for_function(
                "v => v.readyState >= 1 || v.error !== null", arg=player.element_handle()
            )
            state = player.evaluate(
                "v => [v.readyState, v.videoWidth, v.videoHeight, v.error && v.error.code]"
            )
            moderator.screenshot(path=str(ARTIFACTS / "moderation-video.png"), full_page=True)
        finally:
            browser.close()
    assert state[3] is None, f"the browser could not play the video: {state}"
    assert state[0] >= 1
    assert (state[1], state[2]) == (640, 480)
    assert answers, "the browser never asked for the video"
    assert all(status == 206 and wanted for status, wanted, _ in answers), answers
    assert answers[0][2] == f"bytes 0-{MAX_RANGE_BYTES - 1}/{len(video)}"
    # Chromium buffers on past the first frame even with preload="metadata" (it read ~14 MB
    # of a 19 MB file when tried), so what is bounded here is each answer, not the total.
    for _, _, content_range in answers:
        first, last = (int(n) for n in str(content_range).split()[1].split("/")[0].split("-"))
        assert last - first + 1 <= MAX_RANGE_BYTES, answers
