"""Approvals bind to what the moderator saw; editors are authors; ids never merge; "approved"
means verified. Each attack runs against the real Redis the moderation service uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.moderation.harness import Harness, csrf_from, open_harness
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.roles import Role
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.wire import derived_request_id

S = ModerationStatus
pytestmark = pytest.mark.anyio
_HASH = re.compile(r'name="content_hash" value="([0-9a-f]{64})"')
_REVISION = re.compile(r'name="revision" value="(\d+)"')


async def swap_text_in_redis(mod: Harness, request_id: str, text: str) -> None:
    """What an attacker with Redis write access does: HSET the text, no event, same revision."""
    raw = await mod.redis.hget(keys.request(request_id), "request")
    assert raw is not None
    data = json.loads(raw)
    data["payload"]["text"] = text
    await mod.redis.hset(keys.request(request_id), "request", json.dumps(data))


async def test_text_swapped_between_render_and_click_is_refused_in_the_form(
    mod: Harness,
) -> None:
    """The form carries the hash of what was shown; a swap before the click signs nothing."""
    await mod.add_user("mo", Role.MODERATOR)
    request_id = await mod.pending(author="bot", text="what the moderator read")
    async with mod.client() as client:
        await mod.login(client, "mo")
        page = await client.get(f"/requests/{request_id}")
        assert "what the moderator read" in page.text
        shown_hash = _HASH.search(page.text)
        shown_revision = _REVISION.search(page.text)
        assert shown_hash is not None
        assert shown_revision is not None
        await swap_text_in_redis(mod, request_id, "buy cheap followers now")
        response = await client.post(
            f"/requests/{request_id}/approve",
            data={
                "csrf_token": csrf_from(page.text),
                "revision": shown_revision.group(1),
                "content_hash": shown_hash.group(1),
            },
        )
        after = await client.get(response.headers["location"])
    assert response.status_code == 303
    assert "the request changed since you opened it" in after.text
    assert await mod.redis.llen(keys.WRITE_QUEUE) == 0
    record = await mod.deps.decisions.get(request_id)
    assert record is not None
    assert record.state is S.PENDING
    assert record.request.approval is None


async def test_text_swapped_between_read_and_approve_is_refused_in_the_api(
    mod: Harness,
) -> None:
    """The API approves the content_hash its caller read; a swap since then is a 409."""
    await mod.add_user("mo", Role.MODERATOR)
    request_id = await mod.pending(author="bot", text="what the client read")
    auth = {"authorization": f"Bearer {await mod.bearer('mo')}"}
    async with mod.client() as client:
        read = (await client.get(f"/api/requests/{request_id}", headers=auth)).json()
        await swap_text_in_redis(mod, request_id, "buy cheap followers now")
        response = await client.post(
            f"/api/requests/{request_id}/approve",
            json={"revision": read["revision"], "content_hash": read["content_hash"]},
            headers=auth,
        )
        missing = await client.post(
            f"/api/requests/{request_id}/approve", json={"revision": 1}, headers=auth
        )
    assert response.status_code == 409
    assert "the request changed since you opened it" in response.json()["detail"]
    assert missing.status_code == 422
    assert "content_hash" in missing.json()["detail"]
    assert await mod.redis.llen(keys.WRITE_QUEUE) == 0


async def test_an_editor_cannot_approve_the_text_they_edited(mod: Harness) -> None:
    """Edit someone else's request, then approve it: refused through the API and the form."""
    await mod.add_user("mo", Role.MODERATOR)
    request_id = await mod.pending(author="bot", text="original")
    auth = {"authorization": f"Bearer {await mod.bearer('mo')}"}
    async with mod.client() as client:
        edited = await client.patch(
            f"/api/requests/{request_id}",
            json={"revision": 1, "payload": {"text": "my own words"}},
            headers=auth,
        )
        assert edited.status_code == 200
        seen = {"revision": 2, "content_hash": await mod.content_hash(request_id)}
        api = await client.post(f"/api/requests/{request_id}/approve", json=seen, headers=auth)
        csrf = await mod.login(client, "mo")
        page = await client.get(f"/requests/{request_id}")
        form = await client.post(
            f"/requests/{request_id}/approve", data={"csrf_token": csrf, **seen}
        )
        after = await client.get(form.headers["location"])
    assert api.status_code == 403
    assert "wrote or edited" in api.json()["detail"]
    assert "someone else must approve" in page.text
    assert "wrote or edited" in after.text
    assert await mod.redis.llen(keys.WRITE_QUEUE) == 0


async def test_an_editor_is_never_one_of_two_approvers(
    redis_url: str, tmp_path: Path, fast_passwords: PasswordService
) -> None:
    """Two-person DM: the moderator who edited it cannot be the second approver."""
    async with open_harness(redis_url, tmp_path, fast_passwords, two_person_actions=("dm",)) as mod:
        for name in ("ann", "ben", "cat"):
            await mod.add_user(name, Role.MODERATOR)
        request_id = await mod.pending(
            author="bot", action=WriteAction.DM, payload={"recipient_id": "42", "text": "hi"}
        )
        ben = await mod.deps.users.by_name("ben")
        assert ben is not None
        await mod.deps.decisions.edit(
            request_id, {"recipient_id": "42", "text": "hi from ben"}, expected_revision=1, user=ben
        )
        headers = {n: {"authorization": f"Bearer {await mod.bearer(n)}"} for n in ("ann", "cat")}
        headers["ben"] = {"authorization": f"Bearer {await mod.bearer('ben')}"}
        seen = {"revision": 2, "content_hash": await mod.content_hash(request_id)}
        path = f"/api/requests/{request_id}/approve"
        async with mod.client() as client:
            first = await client.post(path, json=seen, headers=headers["ann"])
            editor = await client.post(path, json=seen, headers=headers["ben"])
            assert await mod.redis.llen(keys.WRITE_QUEUE) == 0
            second = await client.post(path, json=seen, headers=headers["cat"])
        assert first.json()["approved"] is False
        assert editor.status_code == 403
        assert second.json()["approvers"] == ["ann", "cat"]
        assert await mod.redis.llen(keys.WRITE_QUEUE) == 1


async def test_a_first_approval_counts_only_for_the_content_it_was_given(
    redis_url: str, tmp_path: Path, fast_passwords: PasswordService
) -> None:
    """Same id and revision, other content (raw HSET): the stale first approval does not count."""
    async with open_harness(redis_url, tmp_path, fast_passwords, two_person_actions=("dm",)) as mod:
        await mod.add_user("ann", Role.MODERATOR)
        await mod.add_user("ben", Role.MODERATOR)
        request_id = await mod.pending(
            author="bot", action=WriteAction.DM, payload={"recipient_id": "42", "text": "hi"}
        )
        ann = {"authorization": f"Bearer {await mod.bearer('ann')}"}
        ben = {"authorization": f"Bearer {await mod.bearer('ben')}"}
        path = f"/api/requests/{request_id}/approve"
        async with mod.client() as client:
            seen_by_ann = {"revision": 1, "content_hash": await mod.content_hash(request_id)}
            first = await client.post(path, json=seen_by_ann, headers=ann)
            await swap_text_in_redis(mod, request_id, "send me your password")
            seen_by_ben = {"revision": 1, "content_hash": await mod.content_hash(request_id)}
            second = await client.post(path, json=seen_by_ben, headers=ben)
            page = (await client.get(f"/api/requests/{request_id}", headers=ben)).json()
        assert first.json()["approved"] is False
        assert second.status_code == 200
        assert second.json() == {
            "id": request_id,
            "approved": False,
            "approvers": ["ben"],
            "needed": 2,
        }
        assert await mod.redis.llen(keys.WRITE_QUEUE) == 0
        assert page["approved"] is False


async def test_a_content_derived_id_claimed_in_advance_is_refused_not_merged(
    mod: Harness,
) -> None:
    """A producer pre-records the id the UI derives for a text: the submission is refused."""
    await mod.add_user("mo", Role.MODERATOR)
    text = "our launch is at noon"
    ui_message = json.dumps({"action": "tweet", "payload": {"text": text}}).encode("utf-8")
    claimed = derived_request_id(ui_message)
    squatter = WriteRequest(
        action=WriteAction.TWEET, payload={"text": "something else"}, id=claimed, author="bot"
    )
    await mod.deps.decisions.ledger.record(squatter, actor="bot")
    auth = {"authorization": f"Bearer {await mod.bearer('mo')}"}
    async with mod.client() as client:
        api = await client.post("/api/requests", content=ui_message, headers=auth)
        csrf = await mod.login(client, "mo")
        form = await client.post("/requests/new", data={"csrf_token": csrf, "text": text})
    assert api.status_code == 409
    assert "already names another request" in api.json()["detail"]
    assert form.status_code == 409
    assert "already names another request" in form.text
    record = await mod.deps.decisions.get(claimed)
    assert record is not None
    assert (record.request.author, record.request.payload["text"]) == ("bot", "something else")


async def test_submitting_the_same_text_twice_is_one_request(mod: Harness) -> None:
    """The same author sending the same content again gets the same request, not a refusal."""
    await mod.add_user("mo", Role.MODERATOR)
    body = json.dumps({"action": "tweet", "payload": {"text": "once"}}).encode("utf-8")
    auth = {"authorization": f"Bearer {await mod.bearer('mo')}"}
    async with mod.client() as client:
        first = await client.post("/api/requests", content=body, headers=auth)
        again = await client.post("/api/requests", content=body, headers=auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


async def test_approved_in_the_api_means_a_verified_approval_in_the_ledger_state(
    mod: Harness,
) -> None:
    """A pending record carrying a genuine approval object is not "approved"; a real one is."""
    await mod.add_user("mo", Role.MODERATOR)
    request_id = await mod.pending(author="bot", text="claims to be approved")
    record = await mod.deps.decisions.get(request_id)
    assert record is not None
    signed = mod.deps.signer.approve(record.request, approver="someone")
    stored = json.loads(await mod.redis.hget(keys.request(request_id), "request") or b"{}")
    stored["approval"] = signed.to_dict()["approval"]
    await mod.redis.hset(keys.request(request_id), "request", json.dumps(stored))
    auth = {"authorization": f"Bearer {await mod.bearer('mo')}"}
    async with mod.client() as client:
        claimed = (await client.get(f"/api/requests/{request_id}", headers=auth)).json()
        seen = {"revision": 1, "content_hash": claimed["content_hash"]}
        approve = await client.post(f"/api/requests/{request_id}/approve", json=seen, headers=auth)
        real = (await client.get(f"/api/requests/{request_id}", headers=auth)).json()
    assert (claimed["state"], claimed["approved"]) == ("pending", False)
    assert approve.status_code == 200
    assert (real["state"], real["approved"]) == ("approved", True)


async def test_a_viewer_gets_no_content_hash_of_a_dm_it_may_not_read(mod: Harness) -> None:
    """The hash of a hidden DM would confirm guesses of its text: viewers get null."""
    await mod.add_user("vic", Role.VIEWER)
    await mod.add_user("mo", Role.MODERATOR)
    request_id = await mod.pending(
        author="bot", action=WriteAction.DM, payload={"recipient_id": "42", "text": "pin 1234"}
    )
    async with mod.client() as client:
        viewer = await client.get(
            f"/api/requests/{request_id}",
            headers={"authorization": f"Bearer {await mod.bearer('vic', ('read',))}"},
        )
        moderator = await client.get(
            f"/api/requests/{request_id}",
            headers={"authorization": f"Bearer {await mod.bearer('mo')}"},
        )
    assert (viewer.json()["text_hidden"], viewer.json()["content_hash"]) == (True, None)
    assert moderator.json()["content_hash"] == await mod.content_hash(request_id)
