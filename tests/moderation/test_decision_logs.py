"""Moderators' decisions in the JSON logs: each line names the request, its account and action."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.moderation.harness import Harness
from twitstack.core.logging import configure_logging
from twitstack.moderation.roles import Role

pytestmark = pytest.mark.anyio


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("prod", "info", stream=stream)
    yield stream
    configure_logging("dev", "info")


def about(stream: io.StringIO, request_id: str) -> list[dict[str, Any]]:
    """`jq 'select(.request_id == $id)'` over the JSON lines."""
    found = [json.loads(x) for x in stream.getvalue().splitlines() if x.startswith("{")]
    return [line for line in found if line.get("request_id") == request_id]


async def test_edit_approve_and_reject_are_logged_with_the_request(
    mod: Harness, json_log: io.StringIO
) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    kept = await mod.pending(author="bot", text="first draft", account="default")
    dropped = await mod.pending(author="bot", text="off-brand", account="default")
    auth = {"authorization": f"Bearer {await mod.bearer('mo')}"}
    async with mod.client() as client:
        edited = await client.patch(
            f"/api/requests/{kept}",
            json={"revision": 1, "payload": {"text": "second draft"}},
            headers=auth,
        )
        assert edited.status_code == 200, edited.text
    await mod.add_user("ann", Role.MODERATOR)
    seen = {"revision": 2, "content_hash": await mod.content_hash(kept)}
    async with mod.client() as client:
        ann = {"authorization": f"Bearer {await mod.bearer('ann')}"}
        ok = await client.post(f"/api/requests/{kept}/approve", json=seen, headers=ann)
        assert ok.status_code == 200, ok.text
        no = await client.post(
            f"/api/requests/{dropped}/reject", json={"reason": "off-brand"}, headers=ann
        )
        assert no.status_code < 300, no.text
    events = [line["event"] for line in about(json_log, kept)]
    assert events == ["moderation.request_edited", "moderation.request_approved"]
    [rejected] = about(json_log, dropped)
    assert rejected["event"] == "moderation.request_rejected"
    for line in [*about(json_log, kept), rejected]:
        assert (line["account"], line["action"]) == ("default", "tweet")


async def test_an_api_submission_is_logged_with_its_id(mod: Harness, json_log: io.StringIO) -> None:
    await mod.add_user("ed", Role.AUTHOR)
    auth = {"authorization": f"Bearer {await mod.bearer('ed', ('read', 'write'))}"}
    async with mod.client() as client:
        made = await client.post(
            "/api/requests",
            json={"action": "tweet", "account": "default", "payload": {"text": "from the API"}},
            headers=auth,
        )
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    [line] = about(json_log, request_id)
    assert line["event"] == "moderation.request_submitted"
    assert (line["account"], line["action"], line["author"]) == ("default", "tweet", "ed")
