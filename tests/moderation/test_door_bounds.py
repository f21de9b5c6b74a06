"""Integers from outside are bounded at the door: out of range is a 4xx, never a 500."""

from __future__ import annotations

import pytest

from tests.moderation.harness import Harness
from twitstack.moderation.roles import Role

pytestmark = pytest.mark.anyio
HUGE = "9" * 30  # past SQLite's 64-bit INTEGER: unbounded, it was an OverflowError


@pytest.mark.parametrize(
    "path",
    [f"/users/{HUGE}/disable", f"/users/{HUGE}/enable", f"/users/{HUGE}/role",
     f"/apikeys/{HUGE}/revoke"],
)  # fmt: skip
async def test_admin_ids_past_64_bits_are_not_found(mod: Harness, path: str) -> None:
    await mod.add_user("root", Role.ADMIN)
    async with mod.client() as client:
        csrf = await mod.login(client, "root")
        response = await client.post(path, data={"csrf_token": csrf, "role": "viewer"})
    assert 300 <= response.status_code < 500, response.text


async def test_api_key_owner_past_64_bits_is_refused(mod: Harness) -> None:
    await mod.add_user("root", Role.ADMIN)
    async with mod.client() as client:
        csrf = await mod.login(client, "root")
        response = await client.post(
            "/apikeys", data={"csrf_token": csrf, "owner": HUGE, "name": "k", "scope": "read"}
        )
    assert response.status_code < 500, response.text
    assert "Choose an owner" in response.text


async def test_edit_form_revision_past_the_bound_is_422(mod: Harness) -> None:
    request_id = await mod.pending(text="edit me")
    await mod.add_user("moderator", Role.MODERATOR)
    async with mod.client() as client:
        csrf = await mod.login(client, "moderator")
        response = await client.post(
            f"/requests/{request_id}/edit",
            data={"csrf_token": csrf, "revision": HUGE, "text": "edited"},
        )
    assert response.status_code == 422, response.text
