"""A request the writer refused for its approval signature is a security event, not a review."""

from __future__ import annotations

import pytest

from tests.moderation.harness import Harness
from twitstack.moderation.roles import Role
from twitstack.writes.models import ModerationStatus as S

pytestmark = pytest.mark.anyio


async def _refused(mod: Harness, reason: str) -> str:
    """A request approved by a moderator, then parked by the writer as it would park one."""
    approver = await mod.deps.users.get(await mod.add_user("raj", Role.MODERATOR))
    assert approver is not None
    request_id = await mod.pending(author="bot", text="pay 100 to this account")
    await mod.deps.decisions.approve(
        request_id,
        expected_revision=1,
        expected_content_hash=await mod.content_hash(request_id),
        user=approver,
    )
    result = await mod.deps.decisions.ledger.transition(
        request_id,
        S.NEEDS_REVIEW,
        from_states=[S.APPROVED],
        actor="writer",
        reason=f"approval_{reason}",
    )
    assert result.ok
    await mod.deps.history.catch_up()
    return request_id


@pytest.mark.parametrize(
    "reason", ["bad_signature", "missing", "unknown_key", "malformed", "spent", "tombstoned"]
)
async def test_refused_approval_shows_a_security_event_without_approve(
    mod: Harness, reason: str
) -> None:
    request_id = await _refused(mod, reason)
    await mod.add_user("mia", Role.MODERATOR)
    async with mod.client() as client:
        await mod.login(client, "mia")
        detail = (await client.get(f"/requests/{request_id}")).text
        history = (await client.get("/history?tab=needs_review")).text
    assert 'id="security-event"' in detail
    assert f"/requests/{request_id}/approve" not in detail
    assert "Approve revision" not in detail
    assert f"/requests/{request_id}/edit" not in detail
    assert "approve again" not in detail.replace("Do not approve it again", "")
    assert "/reject" in detail  # rejecting it stays possible
    assert "security event" in history
    assert "edit and approve again" not in history


@pytest.mark.parametrize("reason", ["stale", "old_format"])
async def test_a_stale_approval_keeps_the_normal_review(mod: Harness, reason: str) -> None:
    """An approval refused only for its age or its pre-upgrade format is operational: it may
    be approved again."""
    request_id = await _refused(mod, reason)
    await mod.add_user("mia", Role.MODERATOR)
    async with mod.client() as client:
        await mod.login(client, "mia")
        detail = (await client.get(f"/requests/{request_id}")).text
    assert 'id="security-event"' not in detail
    assert f"/requests/{request_id}/approve" in detail
