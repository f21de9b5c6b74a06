"""The demo runs the notifier against its own inbox: a request needing review shows up on the
inbox page the banner links, with a link to the request in the demo's UI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import free_port
from tests.demo.first_run import field, running_demo, wait_for
from tests.notifier.conftest import needs_review

pytestmark = pytest.mark.slow


def test_a_request_needing_review_reaches_the_demo_inbox(tmp_path: Path) -> None:
    port = free_port()
    with running_demo(tmp_path, "--port", str(port)) as (_, banner):
        inbox = field(banner, "notifications")
        assert "notifier metrics" in banner
        # As the writer would: a request recorded, then handed back to a person.
        request_id = asyncio.run(_needs_review(field(banner, "Redis"), "the demo notices this"))

        def delivered() -> list[dict[str, object]]:
            items = httpx.get(f"{inbox}notifications.json", timeout=5).json()
            return [n for n in items if n["event"] == "needs_review" and request_id in str(n)]

        wait_for(lambda: delivered(), timeout_s=30, what="the needs_review notification")
        [notification] = delivered()
        assert notification["url"] == f"http://127.0.0.1:{port}/requests/{request_id}"
        page = httpx.get(inbox, timeout=5).text
        assert "Request needs review: tweet as default: &quot;the demo notices this&quot;" in page
        assert f'href="http://127.0.0.1:{port}/requests/{request_id}"' in page
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
