"""The demo runs the notifier against its own inbox: a request needing review shows up on the
inbox page the banner links (with its secret token, on loopback only), with a link to the
request in the demo's UI on the port the UI really listens on."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from tests.demo.first_run import field, listening_addresses, logged_in, running_demo, wait_for
from tests.notifier.conftest import needs_review

pytestmark = pytest.mark.slow


def test_with_port_0_every_link_uses_the_bound_port_and_the_inbox_needs_its_token(
    tmp_path: Path,
) -> None:
    with running_demo(tmp_path, "--port", "0") as (_, banner):
        ui = field(banner, "moderation UI")
        port = urlsplit(ui).port
        assert port not in (None, 0), ui
        # No link the banner prints carries the port the demo was asked for.
        assert not re.search(r"https?://[^\s/]+:0(/|\s|$)", banner), banner
        assert httpx.get(f"{ui}login", timeout=5).status_code == 200
        assert "notifier metrics" in banner

        inbox = field(banner, "notifications")
        parts = urlsplit(inbox)
        assert parts.hostname == "127.0.0.1"
        token = dict(p.split("=", 1) for p in parts.query.split("&"))["token"]
        assert len(token) >= 32
        bare = f"{parts.scheme}://{parts.netloc}/"
        for refused in (bare, f"{bare}?token=", f"{bare}?token={token[:-1]}x",
                        f"{bare}notifications.json"):  # fmt: skip
            assert httpx.get(refused, timeout=5).status_code == 401, refused
        page = httpx.get(inbox, timeout=5)
        assert page.status_code == 200
        assert page.headers["referrer-policy"] == "no-referrer"

        # As the writer would: a request recorded, then handed back to a person.
        request_id = asyncio.run(_needs_review(field(banner, "Redis"), "the demo notices this"))
        feed = f"{bare}notifications.json?token={token}"

        def delivered() -> list[dict[str, object]]:
            items = httpx.get(feed, timeout=5).json()
            return [n for n in items if n["event"] == "needs_review" and request_id in str(n)]

        wait_for(lambda: delivered(), timeout_s=30, what="the needs_review notification")
        [notification] = delivered()
        link = f"http://127.0.0.1:{port}/requests/{request_id}"
        assert notification["url"] == link
        page = httpx.get(inbox, timeout=5)
        assert "Request needs review: tweet as default: &quot;the demo notices this&quot;" in (
            page.text
        )
        assert f'href="{link}"' in page.text
        # The link answers: the request's page, once logged in as the banner says.
        with logged_in(ui.rstrip("/"), banner) as client:
            shown = client.get(link)
            assert shown.status_code == 200
            assert "the demo notices this" in shown.text
        # The inbox checks signatures like any receiver: an unsigned post is refused.
        forged = httpx.post(f"{bare}hook", json={"event": "failed", "title": "forged"}, timeout=5)
        assert forged.status_code == 401
        assert "forged" not in httpx.get(inbox, timeout=5).text


def test_the_inbox_stays_on_loopback_when_the_ui_listens_on_every_interface(
    tmp_path: Path,
) -> None:
    """With `--host 0.0.0.0` the UI listens on every interface, the inbox on 127.0.0.1 only
    (where the kernel says each listens, from /proc: the test talks to no other address)."""
    with running_demo(tmp_path, "--host", "0.0.0.0", "--port", "0") as (_, banner):
        ui_port = urlsplit(field(banner, "moderation UI")).port
        inbox = urlsplit(field(banner, "notifications"))
        assert ui_port is not None
        assert inbox.port is not None
        assert inbox.hostname == "127.0.0.1"
        assert listening_addresses(ui_port) & {"0.0.0.0", "::"}
        assert listening_addresses(inbox.port) == {"127.0.0.1"}
        assert (
            httpx.get(f"http://127.0.0.1:{inbox.port}/?{inbox.query}", timeout=5).status_code == 200
        )


async def _needs_review(redis_url: str, text: str) -> str:
    redis = Redis.from_url(redis_url)
    try:
        return await needs_review(redis, text)
    finally:
        await redis.aclose()
