"""Producer-supplied links and text cannot mislead a moderator: X-only links, bidi neutralised."""

from __future__ import annotations

import re

import pytest

from tests.moderation.harness import Harness
from twitstack.moderation.roles import Role
from twitstack.moderation.views.safe_display import x_link

pytestmark = pytest.mark.anyio
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _source(url: str, **extra: str) -> dict[str, str]:
    return {"id": "1", "author": "someone", "text": "the source", "url": url, **extra}


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.domain)",
        "data:text/html,<script>alert(1)</script>",
        "http://x.com/someone/status/1",
        "https://evil.example/x.com/status/1",
        "https://x.com.evil.example/status/1",
        "https://x.com@evil.example/status/1",
        "https://x.com:8443/status/1",
        "//x.com/someone/status/1",
        "https://x.com/a\u202eb",
    ],
)
async def test_only_https_links_to_x_are_links(mod: Harness, url: str) -> None:
    await mod.add_user("mia", Role.MODERATOR)
    request_id = await mod.pending(source=_source(url))
    async with mod.client() as client:
        await mod.login(client, "mia")
        page = (await client.get(f"/requests/{request_id}")).text
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert all(href.startswith("/") and not href.startswith("//") for href in hrefs), hrefs
    assert 'id="source-url-unlinked"' in page


@pytest.mark.parametrize(
    "url",
    [
        "https://x.com/someone/status/1",
        "https://twitter.com/someone/status/1",
        "https://mobile.twitter.com/someone/status/1",
        "https://t.co/abc",
    ],
)
async def test_https_links_to_x_hosts_stay_links(mod: Harness, url: str) -> None:
    await mod.add_user("mia", Role.MODERATOR)
    request_id = await mod.pending(source=_source(url))
    async with mod.client() as client:
        await mod.login(client, "mia")
        page = (await client.get(f"/requests/{request_id}")).text
    assert f'href="{url}"' in page
    assert x_link(url) == url


async def test_bidi_overrides_in_producer_fields_cannot_reorder_the_page(mod: Harness) -> None:
    """No raw bidi control reaches the HTML: each shows as a visible [U+....] marker."""
    await mod.add_user("mia", Role.MODERATOR)
    trick = "\u202eevorppa\u2066"
    request_id = await mod.pending(
        author=f"bot{trick}",
        text=f"pay now {trick} ok",
        source=_source("https://x.com/s/status/1", author=f"alice{trick}", text=trick),
    )
    async with mod.client() as client:
        await mod.login(client, "mia")
        pages = [
            (await client.get(f"/requests/{request_id}")).text,
            (await client.get("/queue")).text,
            (await client.get("/queue/rows")).text,
        ]
    for page in pages:
        assert not _BIDI.search(page)
        assert "[U+202E]evorppa[U+2066]" in page
