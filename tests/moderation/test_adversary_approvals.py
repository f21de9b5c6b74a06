"""Two-person approvals against an attacker who may re-use a request id once the ledger forgot it.

A producer chooses ids freely; once an executed or rejected id's tombstone has lapsed, it may
record the same id and content again. First approvals given to the earlier request must not
count for it, or one click sends (again) what needs two moderators.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.moderation.harness import Harness, open_harness
from twitstack.moderation.decisions import ApproveOutcome
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.roles import Role
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest

S = ModerationStatus
pytestmark = pytest.mark.anyio


def the_dm() -> WriteRequest:
    return WriteRequest(
        action=WriteAction.DM,
        payload={"recipient_id": "42", "text": "the board meets at noon"},
        id="dm-1",
        author="bot",
    )


async def approve_as(mod: Harness, name: str, content_hash: str) -> ApproveOutcome:
    user = await mod.deps.users.by_name(name)
    assert user is not None
    return await mod.deps.decisions.approve(
        "dm-1", expected_revision=1, expected_content_hash=content_hash, user=user
    )


async def test_first_approvals_of_a_forgotten_request_do_not_count_for_its_id_reused(
    redis_url: str, tmp_path: Path, fast_passwords: PasswordService
) -> None:
    """Two-person DM approved by ann and cat, executed, forgotten after retention; the producer
    records the same id and content again: ann alone must not be enough to send it again."""
    async with open_harness(redis_url, tmp_path, fast_passwords, two_person_actions=("dm",)) as mod:
        await mod.add_user("ann", Role.MODERATOR)
        await mod.add_user("cat", Role.MODERATOR)
        ledger = mod.deps.decisions.ledger
        await ledger.record(the_dm(), actor="producer")
        path = "/api/requests/dm-1/approve"
        seen = {"revision": 1, "content_hash": await mod.content_hash("dm-1")}
        auth = {n: {"authorization": f"Bearer {await mod.bearer(n)}"} for n in ("ann", "cat")}
        async with mod.client() as client:
            assert (await client.post(path, json=seen, headers=auth["ann"])).status_code == 200
            sent = await client.post(path, json=seen, headers=auth["cat"])
            assert sent.json()["approved"] is True
            assert (await ledger.mark_sending("dm-1", actor="writer")).ok
            done = await ledger.transition(
                "dm-1", S.EXECUTED, from_states=[S.SENDING], actor="writer", reason="ok",
                result={"dm_event_id": "1"},
            )  # fmt: skip
            assert done.ok
            await mod.redis.delete(keys.WRITE_QUEUE)
            # Retention (and the tombstone's slack) passes: Redis drops the hash and tombstone.
            mod.clock.advance(ledger.retention_s + 301)
            await mod.redis.delete(keys.request("dm-1"), keys.tombstone("dm-1"))
            assert (await ledger.record(the_dm(), actor="producer")).created
        # Straight to the decision: API tokens are stamped with the wall clock, not this one.
        again = await approve_as(mod, "ann", seen["content_hash"])
        assert (again.approved, again.approvers) == (False, ("ann",))
        assert await mod.redis.llen(keys.WRITE_QUEUE) == 0


async def test_a_first_approval_of_a_rejected_request_does_not_count_for_its_id_reused(
    redis_url: str, tmp_path: Path, fast_passwords: PasswordService
) -> None:
    """ann approves first, ben rejects; after retention the same id and content come back:
    cat alone must not send it on ann's approval of the rejected request."""
    async with open_harness(redis_url, tmp_path, fast_passwords, two_person_actions=("dm",)) as mod:
        for name in ("ann", "ben", "cat"):
            await mod.add_user(name, Role.MODERATOR)
        ledger = mod.deps.decisions.ledger
        await ledger.record(the_dm(), actor="producer")
        path = "/api/requests/dm-1/approve"
        seen = {"revision": 1, "content_hash": await mod.content_hash("dm-1")}
        auth = {
            n: {"authorization": f"Bearer {await mod.bearer(n)}"} for n in ("ann", "ben", "cat")
        }
        async with mod.client() as client:
            assert (await client.post(path, json=seen, headers=auth["ann"])).status_code == 200
            rejected = await client.post(
                "/api/requests/dm-1/reject", json={"reason": "no"}, headers=auth["ben"]
            )
            assert rejected.status_code == 200
            mod.clock.advance(ledger.retention_s + 301)
            await mod.redis.delete(keys.request("dm-1"), keys.tombstone("dm-1"))
            assert (await ledger.record(the_dm(), actor="producer")).created
        # Straight to the decision: API tokens are stamped with the wall clock, not this one.
        again = await approve_as(mod, "cat", seen["content_hash"])
        assert (again.approved, again.approvers) == (False, ("cat",))
        assert await mod.redis.llen(keys.WRITE_QUEUE) == 0
