"""Viewers see that a direct message exists, never its text: pages, lists and the API."""

from __future__ import annotations

import pytest

from tests.moderation.harness import Harness
from twitstack.moderation.roles import Role
from twitstack.writes.models import WriteAction

pytestmark = pytest.mark.anyio
SECRET_DM = "meet me at the usual place 7f3a"


async def _dm(mod: Harness) -> str:
    return await mod.pending(
        author="bot",
        action=WriteAction.DM,
        payload={"recipient_id": "42", "text": SECRET_DM},
    )


async def test_viewer_pages_never_show_dm_text(mod: Harness) -> None:
    await mod.add_user("vic", Role.VIEWER)
    request_id = await _dm(mod)
    async with mod.client() as client:
        await mod.login(client, "vic")
        pages = [
            await client.get("/queue"),
            await client.get("/queue/rows"),
            await client.get(f"/requests/{request_id}"),
        ]
    for page in pages:
        assert page.status_code == 200
        assert SECRET_DM not in page.text, page.url
    assert "hidden from viewers" in pages[0].text
    assert "hidden from viewers" in pages[2].text


async def test_moderators_still_read_dm_text_after_a_viewer_filled_the_cache(
    mod: Harness,
) -> None:
    """The cached queue rows are kept apart by whether the caller may read DMs."""
    await mod.add_user("vic", Role.VIEWER)
    await mod.add_user("mia", Role.MODERATOR)
    request_id = await _dm(mod)
    async with mod.client() as viewer, mod.client() as moderator:
        await mod.login(viewer, "vic")
        await mod.login(moderator, "mia")
        assert SECRET_DM not in (await viewer.get("/queue")).text
        assert SECRET_DM in (await moderator.get("/queue")).text
        assert SECRET_DM not in (await viewer.get("/queue/rows")).text
        assert SECRET_DM in (await moderator.get(f"/requests/{request_id}")).text


async def test_viewer_api_tokens_get_dm_requests_without_text(mod: Harness) -> None:
    await mod.add_user("vic", Role.VIEWER)
    await mod.add_user("mia", Role.MODERATOR)
    request_id = await _dm(mod)
    viewer = {"authorization": f"Bearer {await mod.bearer('vic', ('read',))}"}
    moderator = {"authorization": f"Bearer {await mod.bearer('mia', ('read',))}"}
    async with mod.client() as client:
        listed = await client.get("/api/requests", headers=viewer)
        one = await client.get(f"/api/requests/{request_id}", headers=viewer)
        listed_mod = await client.get("/api/requests", headers=moderator)
        one_mod = await client.get(f"/api/requests/{request_id}", headers=moderator)
    assert SECRET_DM not in listed.text
    assert SECRET_DM not in one.text
    assert listed.json()["items"][0]["text_hidden"] is True
    assert one.json()["payload"] == {"recipient_id": "42"}
    assert listed_mod.json()["items"][0]["text"] == SECRET_DM
    assert one_mod.json()["payload"]["text"] == SECRET_DM
