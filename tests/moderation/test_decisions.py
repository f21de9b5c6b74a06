"""Approve, edit, reject and the two-person rule, through the pages and the JSON API."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.moderation.harness import Harness, open_harness
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.roles import Role
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus, WriteAction
from twitstack.writes.signing import ApprovalVerifier
from twitstack.writes.wire import decode_write_request

pytestmark = pytest.mark.anyio


async def test_approving_signs_and_pushes_the_request_onto_write_queue(mod: Harness) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    request_id = await mod.pending(author="writer-bot", text="ship it")
    seen = await mod.content_hash(request_id)
    async with mod.client() as client:
        csrf = await mod.login(client, "mo")
        response = await client.post(
            f"/requests/{request_id}/approve",
            data={"csrf_token": csrf, "revision": "1", "content_hash": seen},
        )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/queue")
    [raw] = await mod.redis.lrange(keys.WRITE_QUEUE, 0, -1)
    message = decode_write_request(raw)
    assert (message.id, message.moderation) == (request_id, ModerationStatus.APPROVED)
    verifier = ApprovalVerifier([mod.deps.signer.public_key])
    verifier.verify(message)  # raises if the signature does not cover this revision
    assert message.approval is not None
    assert message.approval.approver == "mo"
    record = await mod.deps.decisions.get(request_id)
    assert record is not None
    assert record.state is ModerationStatus.APPROVED
    assert await mod.deps.audit.count(action="request.approve") == 1
    row = await mod.deps.db.fetchone("SELECT state FROM requests WHERE id = ?", (request_id,))
    assert row is not None
    assert row["state"] == "approved"


async def test_author_cannot_approve_their_own_request(mod: Harness) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    request_id = await mod.pending(author="mo")
    token = await mod.bearer("mo")
    seen = await mod.content_hash(request_id)
    async with mod.client() as client:
        api = await client.post(
            f"/api/requests/{request_id}/approve",
            json={"revision": 1, "content_hash": seen},
            headers={"authorization": f"Bearer {token}"},
        )
        csrf = await mod.login(client, "mo")
        page = await client.get(f"/requests/{request_id}")
        form = await client.post(
            f"/requests/{request_id}/approve",
            data={"csrf_token": csrf, "revision": "1", "content_hash": seen},
        )
        after = await client.get(form.headers["location"])
    assert api.status_code == 403
    assert "approve your own" in api.json()["detail"]
    assert "someone else must approve" in page.text
    assert "approve your own" in after.text
    assert await mod.redis.llen(keys.WRITE_QUEUE) == 0


async def test_edit_makes_a_new_revision_and_voids_the_approval(mod: Harness) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    request_id = await mod.pending(author="bot", text="first draft")
    auth = {"authorization": f"Bearer {await mod.bearer('mo')}"}
    seen = {"revision": 1, "content_hash": await mod.content_hash(request_id)}
    async with mod.client() as client:
        approved = await client.post(f"/api/requests/{request_id}/approve", json=seen, headers=auth)
        edited = await client.patch(
            f"/api/requests/{request_id}",
            json={"revision": 1, "payload": {"text": "second draft"}},
            headers=auth,
        )
        stale = await client.post(f"/api/requests/{request_id}/approve", json=seen, headers=auth)
        detail = await client.get(f"/api/requests/{request_id}", headers=auth)
    assert approved.json()["approved"] is True
    assert edited.status_code == 200
    assert edited.json()["revision"] == 2
    assert stale.status_code == 409
    body = detail.json()
    assert (body["state"], body["revision"], body["approved"]) == ("pending", 2, False)
    assert body["payload"] == {"text": "second draft"}
    assert [e["to"] for e in body["events"]] == ["pending", "approved", "pending"]


async def test_edit_page_saves_a_revision(mod: Harness) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    request_id = await mod.pending(author="bot", text="typo teh")
    async with mod.client() as client:
        csrf = await mod.login(client, "mo")
        form = await client.get(f"/requests/{request_id}/edit")
        assert "typo teh" in form.text
        saved = await client.post(
            f"/requests/{request_id}/edit",
            data={"csrf_token": csrf, "revision": "1", "text": "typo the"},
        )
        page = await client.get(saved.headers["location"])
    assert saved.status_code == 303
    assert "typo the" in page.text
    assert "revision 2" in page.text.lower()


async def test_reject_needs_a_reason(mod: Harness) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    request_id = await mod.pending(author="bot")
    auth = {"authorization": f"Bearer {await mod.bearer('mo')}"}
    async with mod.client() as client:
        blank = await client.post(
            f"/api/requests/{request_id}/reject", json={"reason": "  "}, headers=auth
        )
        done = await client.post(
            f"/api/requests/{request_id}/reject", json={"reason": "off-brand"}, headers=auth
        )
        again = await client.post(
            f"/api/requests/{request_id}/reject", json={"reason": "twice"}, headers=auth
        )
    assert blank.status_code == 422
    assert done.json() == {"id": request_id, "state": "rejected"}
    assert again.status_code == 409
    record = await mod.deps.decisions.get(request_id)
    assert record is not None
    assert (record.state, record.last_reason) == (ModerationStatus.REJECTED, "off-brand")


async def test_dms_can_require_two_distinct_approvers(
    redis_url: str, tmp_path: Path, fast_passwords: PasswordService
) -> None:
    async with open_harness(redis_url, tmp_path, fast_passwords, two_person_actions=("dm",)) as mod:
        await mod.add_user("ann", Role.MODERATOR)
        await mod.add_user("ben", Role.MODERATOR)
        request_id = await mod.pending(
            author="bot", action=WriteAction.DM, payload={"recipient_id": "42", "text": "hi"}
        )
        ann = {"authorization": f"Bearer {await mod.bearer('ann')}"}
        ben = {"authorization": f"Bearer {await mod.bearer('ben')}"}
        path = f"/api/requests/{request_id}/approve"
        seen = {"revision": 1, "content_hash": await mod.content_hash(request_id)}
        async with mod.client() as client:
            first = await client.post(path, json=seen, headers=ann)
            repeat = await client.post(path, json=seen, headers=ann)
            assert await mod.redis.llen(keys.WRITE_QUEUE) == 0
            second = await client.post(path, json=seen, headers=ben)
        assert (first.json()["approved"], repeat.json()["approved"]) == (False, False)
        assert second.json() == {
            "id": request_id,
            "approved": True,
            "approvers": ["ann", "ben"],
            "needed": 2,
        }
        assert await mod.redis.llen(keys.WRITE_QUEUE) == 1
