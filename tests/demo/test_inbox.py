"""The demo inbox's page and feed answer only with its token; the signed webhook needs none."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from twitstack.demo.inbox import NotificationInbox
from twitstack.notifier.signing import DELIVERY_HEADER, SIGNATURE_HEADER, signature_header

pytestmark = pytest.mark.anyio
KEY = "inbox-test-signing-key"


async def test_page_and_feed_need_the_token_and_the_hook_its_signature() -> None:
    inbox = NotificationInbox(KEY)
    assert len(inbox.token) >= 32
    assert NotificationInbox(KEY).token != inbox.token  # random, not derived
    transport = httpx.ASGITransport(inbox.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        await _check(client, inbox)


async def _check(client: httpx.AsyncClient, inbox: NotificationInbox) -> None:
    body = json.dumps({"event": "failed", "title": "Request failed: secret plans", "url": ""})
    signed = await client.post(
        "/hook", content=body,
        headers={SIGNATURE_HEADER: signature_header(KEY, int(time.time()), body.encode()),
                 DELIVERY_HEADER: "d1"},
    )  # fmt: skip
    assert signed.status_code == 200
    for path in ("/", "/notifications.json"):
        for query in ("", "?token=", f"?token={inbox.token[:-1]}", f"?token={inbox.token}x"):
            refused = await client.get(path + query)
            assert refused.status_code == 401, path + query
            assert "secret plans" not in refused.text
        shown = await client.get(f"{path}?token={inbox.token}")
        assert shown.status_code == 200
        assert "secret plans" in shown.text
        assert shown.headers["referrer-policy"] == "no-referrer"
        assert shown.headers["cache-control"] == "no-store"
