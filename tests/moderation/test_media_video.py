"""Video through the media door: served to signed-in reviewers with byte ranges (206/416,
bounded), from the local store and from S3 (moto server mode), with the same safety headers
as images; the review page shows it as a `<video>` and GIFs as images."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.moderation.harness import Harness, csrf_from
from tests.support.media_files import gif, h264_mp4
from tests.support.moto import TEST_CREDENTIALS, moto_server
from twitstack.moderation.media_ranges import MAX_RANGE_BYTES, RangeNotSatisfiable, parse_range
from twitstack.moderation.roles import Role
from twitstack.writes.media_store import open_media_store

pytestmark = pytest.mark.anyio
MEDIA_CSP = "default-src 'none'; sandbox"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def store_kind(request: pytest.FixtureRequest, mod: Harness) -> str:
    """The harness's media store, or a fresh bucket on moto in its place."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        bucket = f"media-{uuid.uuid4().hex[:12]}"
        mod.deps.media_store = lambda: open_media_store(
            kind="s3", data_dir=mod.deps.media_tmp_dir, bucket=bucket, prefix="media",
            region="us-east-1", endpoint_url=endpoint,
            access_key_id=TEST_CREDENTIALS["aws_access_key_id"],
            secret_access_key=TEST_CREDENTIALS["aws_secret_access_key"],
        )  # fmt: skip
    return str(request.param)


async def _upload(mod: Harness, data: bytes, content_type: str) -> str:
    await mod.add_user("ann", Role.AUTHOR)
    auth = {"authorization": f"Bearer {await mod.bearer('ann')}", "content-type": content_type}
    async with mod.client() as client:
        response = await client.post("/api/media", content=data, headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["sha256"])


async def test_video_ranges_on_both_stores(mod: Harness, store_kind: str) -> None:
    """206 with the asked bytes and Content-Range; the same safety headers as images."""
    video = h264_mp4(32, 32, frames=3, seed=1)
    sha = await _upload(mod, video, "video/mp4")
    await mod.add_user("vic", Role.VIEWER)
    async with mod.client() as client:
        await mod.login(client, "vic")
        whole = await client.get(f"/media/{sha}")
        head = await client.get(f"/media/{sha}", headers={"range": "bytes=0-99"})
        middle = await client.get(f"/media/{sha}", headers={"range": "bytes=100-"})
        tail = await client.get(f"/media/{sha}", headers={"range": "bytes=-10"})
        past_end = await client.get(f"/media/{sha}", headers={"range": "bytes=10-99999999"})
    assert whole.status_code == 200
    assert whole.content == video
    assert whole.headers["accept-ranges"] == "bytes"
    assert head.status_code == 206
    assert head.content == video[:100]
    assert head.headers["content-range"] == f"bytes 0-99/{len(video)}"
    assert head.headers["content-length"] == "100"
    assert middle.content == video[100:]
    assert tail.content == video[-10:]
    assert tail.headers["content-range"] == f"bytes {len(video) - 10}-{len(video) - 1}/{len(video)}"
    assert past_end.content == video[10:]
    for answer in (whole, head, middle):
        assert answer.headers["content-type"] == "video/mp4"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"] == MEDIA_CSP
        assert answer.headers["content-disposition"] == f'inline; filename="{sha}.mp4"'
        assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "header",
    ["bytes=5000-", "bytes=9-3", "bytes=0-1,5-9", "items=0-9", "bytes=-0", "bytes=-", "bytes=x-"],
)
async def test_bad_ranges_are_416(mod: Harness, header: str) -> None:
    """Past the end, backwards, several, another unit, empty: 416 with `bytes */size`."""
    video = h264_mp4(16, 16, frames=1)
    assert len(video) < 5000
    sha = await _upload(mod, video, "video/mp4")
    await mod.add_user("vic", Role.VIEWER)
    async with mod.client() as client:
        await mod.login(client, "vic")
        answer = await client.get(f"/media/{sha}", headers={"range": header})
    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{len(video)}"
    assert answer.text.startswith("416: Range:")


def test_a_range_answer_is_bounded() -> None:
    """`bytes=0-` of a large file answers at most MAX_RANGE_BYTES (the browser asks on)."""
    size = 512 * 1024 * 1024
    part = parse_range("bytes=0-", size)
    assert (part.start, part.length) == (0, MAX_RANGE_BYTES)
    assert part.content_range == f"bytes 0-{MAX_RANGE_BYTES - 1}/{size}"
    late = parse_range(f"bytes={size - 10}-{size + 10}", size)
    assert (late.start, late.end) == (size - 10, size - 1)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-1", 0)


async def test_video_needs_login_and_role(mod: Harness) -> None:
    """Anonymous callers get no bytes; a reviewer's session does."""
    sha = await _upload(mod, h264_mp4(16, 16, frames=1), "video/mp4")
    async with mod.client() as client:
        anonymous = await client.get(f"/media/{sha}", headers={"range": "bytes=0-9"})
    assert anonymous.status_code in (302, 303, 401)
    assert anonymous.content[:4] != b"\x00\x00\x00\x20"


async def test_detail_shows_video_and_gif(mod: Harness) -> None:
    """The review and edit pages have a `<video preload=metadata>` for an MP4, and the review
    page an `<img>` for a GIF (it animates)."""
    await mod.add_user("ann", Role.AUTHOR)
    video, animation = h264_mp4(16, 16, frames=1, seed=5), gif(seed=5)
    async with mod.client() as client:
        await mod.login(client, "ann")
        pages, urls = [], []
        for name, data in (("v.mp4", video), ("a.gif", animation)):
            form = await client.get("/requests/new")
            created = await client.post(
                "/requests/new",
                data={"csrf_token": csrf_from(form.text), "text": name, "alt1": "moving"},
                files={"media1": (name, data, "application/octet-stream")},
            )
            assert created.status_code == 303, created.text
            pages.append((await client.get(created.headers["location"])).text)
            urls.append(created.headers["location"])
        edit_page = (await client.get(f"{urls[0]}/edit")).text
    video_sha, gif_sha = (hashlib.sha256(d).hexdigest() for d in (video, animation))
    assert f'<video class="thumb" src="/media/{video_sha}" preload="metadata" controls' in pages[0]
    assert "placeholder" not in pages[0]
    assert f'<img class="thumb" src="/media/{gif_sha}"' in pages[1]
    assert f'<video class="thumb" src="/media/{video_sha}" preload="metadata"' in edit_page


class _FailingAfterFirstRead:
    """The harness's local store, except that reads past the first slice fail like a disk."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name

    async def head(self, sha256: str) -> Any:
        return await self._inner.head(sha256)

    async def read(self, sha256: str, offset: int = 0, length: int | None = None) -> bytes:
        if offset > 0:
            raise OSError(5, "Input/output error")
        data: bytes = await self._inner.read(sha256, offset, length)
        return data


async def test_a_store_failing_mid_stream_ends_the_body_short(mod: Harness) -> None:
    """A whole video streamed without Range: a store error after the first slice ends the
    body there (the status line was sent), and the app goes on answering."""
    video = h264_mp4(640, 480, frames=10, seed=2)
    assert len(video) > MAX_RANGE_BYTES
    sha = await _upload(mod, video, "video/mp4")
    await mod.add_user("vic", Role.VIEWER)
    opened = mod.deps.media_store

    @asynccontextmanager
    async def failing() -> AsyncIterator[Any]:
        async with opened() as store:
            yield _FailingAfterFirstRead(store)

    mod.deps.media_store = failing
    async with mod.client() as client:
        await mod.login(client, "vic")
        cut = await client.get(f"/media/{sha}")
        ranged = await client.get(f"/media/{sha}", headers={"range": "bytes=0-9"})
    assert cut.status_code == 200
    assert cut.content == video[:MAX_RANGE_BYTES]
    assert ranged.status_code == 206
