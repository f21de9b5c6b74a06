"""The demo runs the notifier against its own inbox: a request needing review shows up on the
inbox page the banner links, with a link to the request in the demo's UI on the port the UI
really listens on."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from tests.demo.first_run import field, logged_in, running_demo, wait_for
from tests.notifier.conftest import needs_review

pytestmark = pytest.mark.slow


def test_with_port_0_every_link_uses_the_bound_port(tmp_path: Path) -> None:
    with running_demo(tmp_path, "--port", "0") as (_, banner):
        ui = field(banner, "moderation UI")
        port = urlsplit(ui).port
        assert port not in (None, 0), ui
        # No link the banner prints carries the port the demo was asked for.
        assert not re.search(r"https?://[^\s/]+:0(/|\s|$)", banner), banner
        assert httpx.get(f"{ui}login", timeout=5).status_code == 200
        assert "notifier metrics" in banner
        inbox = field(banner, "notifications")
        # As the writer would: a request recorded, then handed back to a person.
        request_id = asyncio.run(_needs_review(field(banner, "Redis"), "the demo notices this"))

        def delivered() -> list[dict[str, object]]:
            items = httpx.get(f"{inbox}notifications.json", timeout=5).json()
            return [n for n in items if n["event"] == "needs_review" and request_id in str(n)]

        wait_for(lambda: delivered(), timeout_s=30, what="the needs_review notification")
        [notification] = delivered()
        link = f"http://127.0.0.1:{port}/requests/{request_id}"
        assert notification["url"] == link
        page = httpx.get(inbox, timeout=5).text
        assert "Request needs review: tweet as default: &quot;the demo notices this&quot;" in page
        assert f'href="{link}"' in page
        # The link answers: the request's page, once logged in as the banner says.
        with logged_in(ui.rstrip("/"), banner) as client:
            shown = client.get(link)
            assert shown.status_code == 200
            assert "the demo notices this" in shown.text
        # The inbox checks signatures like any receiver: an unsigned post is refused.
        forged = httpx.post(f"{inbox}hook", json={"event": "failed", "title": "forged"}, timeout=5)
        assert forged.status_code == 401
        assert "forged" not in httpx.get(inbox, timeout=5).text


async def _needs_review(redis_url: str, text: str) -> str:
    redis = Redis.from_url(redis_url)
    try:
        return await needs_review(redis, text)
    finally:
        await redis.aclose()
