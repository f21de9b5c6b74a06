"""The fake X's media upload: simple and chunked shapes, processing states, limits, expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.media_files import gif, mp4, png
from twitstack.sandbox.xapi import (
    DEFAULT_BEARER_TOKEN,
    BearerTokenSpec,
    XApiSandboxConfig,
    XApiState,
    create_xapi_app,
)

pytestmark = pytest.mark.anyio
AUTH = {"authorization": f"Bearer {DEFAULT_BEARER_TOKEN}"}
MB = 1024 * 1024


@pytest.fixture
def state() -> XApiState:
    sandbox = XApiState(XApiSandboxConfig(clock_start=1_800_000_000.0, clock_frozen=True))
    sandbox.tokens.add_bearer(BearerTokenSpec(token="other", user_id="1001"))
    sandbox.tokens.add_bearer(
        BearerTokenSpec(token="no-media", user_id="1000", scopes=frozenset({"tweet.write"}))
    )
    return sandbox


@pytest.fixture
async def client(state: XApiState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url="http://x", headers=AUTH) as http:
        yield http


async def simple(client: httpx.AsyncClient, data: bytes, **headers: str) -> httpx.Response:
    files = {"media": ("f", data)}
    form = {"media_category": "tweet_image"}
    return await client.post("/2/media/upload", files=files, data=form, headers=headers)


async def chunked(
    client: httpx.AsyncClient, data: bytes, media_type: str, category: str, chunk: int = MB
) -> str:
    init = await client.post(
        "/2/media/upload/initialize",
        json={"media_type": media_type, "total_bytes": len(data), "media_category": category},
    )
    assert init.status_code == 200, init.text
    media_id: str = init.json()["data"]["id"]
    for index, start in enumerate(range(0, len(data), chunk)):
        part = await client.post(
            f"/2/media/upload/{media_id}/append",
            files={"media": ("blob", data[start : start + chunk])},
            data={"segment_index": str(index)},
        )
        assert part.status_code == 200, part.text
        assert set(part.json()["data"]) == {"expires_at"}
    return media_id


async def test_simple_upload_shape_and_post(client: httpx.AsyncClient, state: XApiState) -> None:
    """An image uploads in one call; the post carries it and reads back with a media link."""
    response = await simple(client, png())
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["media_key"] == f"3_{data['id']}"
    assert data["expires_after_secs"] == 86_400
    assert data["image"] == {"image_type": "image/png"}
    meta = await client.post(
        "/2/media/metadata", json={"id": data["id"], "metadata": {"alt_text": {"text": "cat"}}}
    )
    assert meta.json()["data"]["associated_metadata"] == {"alt_text": {"text": "cat"}}
    assert state.media.items[data["id"]].alt_text == "cat"
    post = await client.post("/2/tweets", json={"text": "hi", "media": {"media_ids": [data["id"]]}})
    assert post.status_code == 201
    assert post.json()["data"]["text"].startswith("hi https://t.co/")


async def test_four_images_read_back_one_link_four_entities(client: httpx.AsyncClient) -> None:
    """The text gets one t.co link; entities list it once per media item with its key."""
    ids = [(await simple(client, png(seed=i))).json()["data"]["id"] for i in range(4)]
    post = await client.post("/2/tweets", json={"text": "four", "media": {"media_ids": ids}})
    user = await client.get(
        "/2/users/1000/tweets", params={"tweet.fields": "entities", "max_results": "5"}
    )
    (shown,) = user.json()["data"]
    assert shown["id"] == post.json()["data"]["id"]
    assert shown["text"].count("https://t.co/") == 1
    keys = [u["media_key"] for u in shown["entities"]["urls"]]
    assert keys == [f"3_{i}" for i in ids]


async def test_video_chunked_processing_states(client: httpx.AsyncClient) -> None:
    """initialize/append/finalize, then STATUS: pending → in_progress → succeeded."""
    media_id = await chunked(client, mp4(3 * MB + 5), "video/mp4", "tweet_video")
    early = await client.post("/2/tweets", json={"text": "v", "media": {"media_ids": [media_id]}})
    assert early.status_code == 400  # not finalized: not postable
    final = await client.post(f"/2/media/upload/{media_id}/finalize")
    info = final.json()["data"]
    assert info["media_key"] == f"7_{media_id}"
    assert info["processing_info"]["state"] == "pending"
    states = []
    for _ in range(5):  # bounded: the default needs two polls
        status = await client.get(
            "/2/media/upload", params={"command": "STATUS", "media_id": media_id}
        )
        states.append(status.json()["data"]["processing_info"]["state"])
        if states[-1] == "succeeded":
            break
    assert states == ["in_progress", "succeeded"]
    post = await client.post("/2/tweets", json={"text": "v", "media": {"media_ids": [media_id]}})
    assert post.status_code == 201


async def test_processing_can_fail() -> None:
    """With processing set to fail, STATUS ends in `failed` with an error, and posting is 400."""
    state = XApiState(XApiSandboxConfig(media_processing_fails=True, media_processing_polls=1))
    transport = httpx.ASGITransport(create_xapi_app(state=state))
    async with httpx.AsyncClient(transport=transport, base_url="http://x", headers=AUTH) as http:
        media_id = await chunked(http, gif(), "image/gif", "tweet_gif")
        await http.post(f"/2/media/upload/{media_id}/finalize")
        query = {"command": "STATUS", "media_id": media_id}
        status = await http.get("/2/media/upload", params=query)
        info = status.json()["data"]["processing_info"]
        assert info["state"] == "failed"
        assert info["error"]["name"] == "InvalidMedia"
        post = await http.post("/2/tweets", json={"media": {"media_ids": [media_id]}})
        assert post.status_code == 400


async def test_expired_foreign_and_unknown_ids_are_refused(
    client: httpx.AsyncClient, state: XApiState
) -> None:
    """A media id past its 24 h, another user's, or never issued makes the post a 400."""
    mine = (await simple(client, png(seed=1))).json()["data"]["id"]
    theirs = (await simple(client, png(seed=2), authorization="Bearer other")).json()["data"]["id"]
    for ids in ([theirs], ["12345"]):
        refused = await client.post("/2/tweets", json={"text": "x", "media": {"media_ids": ids}})
        assert refused.status_code == 400
        assert "media IDs are invalid" in refused.text
    state.clock.advance(86_400)
    expired = await client.post("/2/tweets", json={"text": "y", "media": {"media_ids": [mine]}})
    assert expired.status_code == 400


@pytest.mark.parametrize(
    ("call", "status"),
    [
        ({"data": png() + b"\0" * (5 * MB)}, 400),  # image past 5 MB
        ({"data": b"<svg onload=alert(1)>"}, 400),  # not a media type
        ({"data": mp4(1000)}, 400),  # video needs the chunked upload
    ],
)
async def test_simple_upload_limits(
    client: httpx.AsyncClient, call: dict[str, Any], status: int
) -> None:
    """X's type and size checks on the simple upload."""
    assert (await simple(client, call["data"])).status_code == status


async def test_chunked_limits(client: httpx.AsyncClient) -> None:
    """Size past the type's limit, a 6 MB segment, wrong magic and a short upload are 400s."""
    big = await client.post(
        "/2/media/upload/initialize",
        json={"media_type": "image/gif", "total_bytes": 15 * MB + 1, "media_category": "tweet_gif"},
    )
    assert big.status_code == 400
    init = await client.post(
        "/2/media/upload/initialize",
        json={"media_type": "video/mp4", "total_bytes": 7 * MB, "media_category": "tweet_video"},
    )
    media_id = init.json()["data"]["id"]
    wrong = await client.post(
        f"/2/media/upload/{media_id}/append",
        files={"media": ("b", png())},
        data={"segment_index": "0"},
    )
    assert wrong.status_code == 400
    huge = await client.post(
        f"/2/media/upload/{media_id}/append",
        files={"media": ("b", mp4(6 * MB))},
        data={"segment_index": "0"},
    )
    assert huge.status_code == 400
    short = await client.post(f"/2/media/upload/{media_id}/finalize")
    assert short.status_code == 400
    assert "Received 0" in short.text


async def test_media_write_scope_required(client: httpx.AsyncClient) -> None:
    """A token without media.write is refused with 403."""
    response = await simple(client, png(), authorization="Bearer no-media")
    assert response.status_code == 403


async def test_inspection_lists_media(client: httpx.AsyncClient) -> None:
    """GET /_sandbox/media shows each upload's state and hash; behaviour toggles the check."""
    media_id = (await simple(client, png(seed=9))).json()["data"]["id"]
    listing = (await client.get("/_sandbox/media")).json()
    assert listing["uploads"] == 1
    (item,) = listing["media"]
    assert (item["id"], item["state"], item["media_type"]) == (media_id, "succeeded", "image/png")
    await client.put("/_sandbox/behaviour", json={"check_media_ids": False})
    post = await client.post("/2/tweets", json={"text": "z", "media": {"media_ids": ["999"]}})
    assert post.status_code == 201
