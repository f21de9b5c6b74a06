"""Media through the moderation service: the upload API, attachment checks on create, the
New form with files, thumbnails served safely, and the missing-alt-text warning."""

from __future__ import annotations

import hashlib
import shutil
from typing import Any

import pytest

from tests.moderation.harness import Harness, csrf_from
from tests.support.media_files import gif, mp4, png
from twitstack.moderation.roles import Role

pytestmark = pytest.mark.anyio


async def author_token(mod: Harness) -> dict[str, str]:
    await mod.add_user("ann", Role.AUTHOR)
    return {"authorization": f"Bearer {await mod.bearer('ann')}"}


async def test_raw_and_multipart_uploads(mod: Harness) -> None:
    """A raw body and a multipart file both land in the store under their SHA-256."""
    auth = await author_token(mod)
    data = png(seed=1)
    async with mod.client() as client:
        raw = await client.post(
            "/api/media", content=data, headers={**auth, "content-type": "image/png"}
        )
        form = await client.post(
            "/api/media", files={"file": ("../../evil.php", gif(), "text/x-php")}, headers=auth
        )
    assert raw.status_code == 201
    assert raw.json() == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "type": "image/png",
        "size": len(data),
    }
    assert form.status_code == 201
    assert form.json()["type"] == "image/gif"  # from the bytes, never the name or header
    stored = sorted(p.name for p in (mod.deps.media_tmp_dir.parent / "media").rglob("*"))
    assert hashlib.sha256(gif()).hexdigest() in stored
    assert not any("evil" in name for name in stored)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b"<html><script>alert(1)</script>", "image/png", 415, "JPEG, PNG"),
        (png() + b"\0" * (5 * 1024 * 1024), "image/png", 413, "5 MB"),
        (b"", "image/png", 422, "0 bytes"),
        (gif(), "image/png", 415, "declared image/png"),
    ],
)
async def test_hostile_uploads_are_4xx(
    mod: Harness, body: bytes, content_type: str, status: int, says: str
) -> None:
    """Wrong magic bytes, oversize, empty, and a lying Content-Type: 4xx with the reason."""
    auth = await author_token(mod)
    async with mod.client() as client:
        response = await client.post(
            "/api/media", content=body, headers={**auth, "content-type": content_type}
        )
    assert response.status_code == status
    assert says in response.json()["detail"]


async def test_a_malformed_multipart_body_is_422_with_the_field(mod: Harness) -> None:
    """A multipart body the parser cannot read is the client's fault: 422 naming `file`."""
    auth = await author_token(mod)
    boundary = "5d730a124bb464bbb34349d78a2055ac"
    body = f"--{boundary}\r\n2.9e+16--{boundary}--\r\n".encode()
    headers = {**auth, "content-type": f"multipart/form-data; boundary={boundary}"}
    async with mod.client() as client:
        response = await client.post("/api/media", content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("file: unreadable multipart body")


async def test_upload_needs_author_and_write_scope(mod: Harness) -> None:
    """Anonymous is 401, a viewer 403, a read-only token 403."""
    await mod.add_user("vic", Role.VIEWER)
    await mod.add_user("ann", Role.AUTHOR)
    viewer = {"authorization": f"Bearer {await mod.bearer('vic')}"}
    read_only = {"authorization": f"Bearer {await mod.bearer('ann', ('read',))}"}
    async with mod.client() as client:
        assert (await client.post("/api/media", content=png())).status_code == 401
        assert (await client.post("/api/media", content=png(), headers=viewer)).status_code == 403
        denied = await client.post("/api/media", content=png(), headers=read_only)
        assert denied.status_code == 403


async def test_create_refuses_unknown_or_mismatched_files(mod: Harness) -> None:
    """A request naming a sha256 the store lacks, or with another size, is 422; one naming
    an uploaded file is created."""
    auth = await author_token(mod)
    async with mod.client() as client:
        uploaded = (
            await client.post(
                "/api/media", content=png(seed=4), headers={**auth, "content-type": "image/png"}
            )
        ).json()

        async def create(attachment: dict[str, Any]) -> Any:
            message = {"action": "tweet", "payload": {"text": "hi", "media": {
                "attachments": [attachment]}}}  # fmt: skip
            return await client.post("/api/requests", json=message, headers=auth)

        unknown = await create({**uploaded, "sha256": "0" * 64})
        resized = await create({**uploaded, "size": uploaded["size"] + 1})
        good = await create({**uploaded, "alt_text": "four"})
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "payload.media.attachments[0].sha256"
    assert resized.status_code == 422
    assert good.status_code == 201


async def test_new_form_with_files_and_the_detail_page(mod: Harness) -> None:
    """The New form stores its files; the detail page shows a thumbnail for the image, a
    placeholder for the video-less GIF-less slots, alt text, and warns where alt is missing."""
    await mod.add_user("ann", Role.AUTHOR)
    async with mod.client() as client:
        await mod.login(client, "ann")
        page = await client.get("/requests/new")
        assert 'enctype="multipart/form-data"' in page.text
        response = await client.post(
            "/requests/new",
            data={"csrf_token": csrf_from(page.text), "text": "look", "alt1": "a square",
                  "alt2": ""},
            files={"media1": ("a.png", png(seed=7), "image/png"),
                   "media2": ("b.png", png(seed=8), "image/png")},
        )  # fmt: skip
        assert response.status_code == 303, response.text
        detail = await client.get(response.headers["location"])
        sha = hashlib.sha256(png(seed=7)).hexdigest()
        thumb = await client.get(f"/media/{sha}")
        traversal = await client.get("/media/..%2f..%2fetc%2fpasswd")
    assert f'src="/media/{sha}"' in detail.text
    assert "a square" in detail.text
    assert "missing alt text" in detail.text
    assert "Media 2 has no alt text" in detail.text
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/png"
    assert thumb.headers["x-content-type-options"] == "nosniff"
    assert thumb.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert thumb.content == png(seed=7)
    assert traversal.status_code == 404


async def test_form_refuses_five_files_worth_and_bad_files(mod: Harness) -> None:
    """A file that is not media, or an image beside a video, re-shows the form with a 4xx."""
    await mod.add_user("ann", Role.AUTHOR)
    async with mod.client() as client:
        await mod.login(client, "ann")
        token = csrf_from((await client.get("/requests/new")).text)
        bad = await client.post(
            "/requests/new",
            data={"csrf_token": token, "text": "x"},
            files={"media1": ("a.png", b"MZ\x90\x00 not an image", "image/png")},
        )
        mixed = await client.post(
            "/requests/new",
            data={"csrf_token": token, "text": "x"},
            files={"media1": ("a.png", png(), "image/png"), "media2": ("v.mp4", mp4(5000))},
        )
    assert bad.status_code == 415
    assert "JPEG, PNG" in bad.text
    assert mixed.status_code == 422
    assert "alone" in mixed.text


async def test_video_is_served_and_unknown_is_404(mod: Harness) -> None:
    """Images and video are served back (video for its poster frame, see
    test_media_video.py); an unknown hash is 404 for a viewer."""
    auth = await author_token(mod)
    await mod.add_user("vic", Role.VIEWER)
    async with mod.client() as client:
        video = await client.post(
            "/api/media", content=mp4(4000), headers={**auth, "content-type": "video/mp4"}
        )
        await mod.login(client, "vic")
        served = await client.get(f"/media/{video.json()['sha256']}")
        assert served.status_code == 200
        assert served.headers["content-type"] == "video/mp4"
        assert (await client.get(f"/media/{'a' * 64}")).status_code == 404


async def test_edit_adds_alt_text_and_voids_nothing_else(mod: Harness) -> None:
    """The edit form sets a missing alt text: a new revision whose attachment differs only
    there, and the warning is gone."""
    await mod.add_user("ann", Role.AUTHOR)
    async with mod.client() as client:
        await mod.login(client, "ann")
        token = csrf_from((await client.get("/requests/new")).text)
        created = await client.post(
            "/requests/new",
            data={"csrf_token": token, "text": "edit me"},
            files={"media1": ("a.png", png(seed=11), "image/png")},
        )
        url = created.headers["location"]
        edit_page = await client.get(f"{url}/edit")
        assert 'name="alt1"' in edit_page.text
        saved = await client.post(
            f"{url}/edit",
            data={"csrf_token": csrf_from(edit_page.text), "revision": "1", "text": "edit me",
                  "alt1": "now described"},
        )  # fmt: skip
        assert saved.status_code == 303
        detail = await client.get(url)
    assert "now described" in detail.text
    assert "missing alt text" not in detail.text
    record = await mod.deps.decisions.get(url.rsplit("/", 1)[-1])
    assert record is not None
    assert record.request.revision == 2
    (attachment,) = record.request.payload["media"]["attachments"]
    assert attachment["alt_text"] == "now described"
    assert attachment["sha256"] == hashlib.sha256(png(seed=11)).hexdigest()


async def test_an_unreachable_store_is_503_not_500(mod: Harness) -> None:
    """S3 down (nothing listens on the endpoint): uploads, creates and thumbnails say 503."""
    from tests.conftest import free_port
    from twitstack.writes.media_store import open_media_store

    endpoint = f"http://127.0.0.1:{free_port()}"
    mod.deps.media_store = lambda: open_media_store(
        kind="s3", data_dir=mod.deps.media_tmp_dir, bucket="b", prefix="media",
        region="us-east-1", endpoint_url=endpoint, access_key_id="x", secret_access_key="y",
    )  # fmt: skip
    auth = await author_token(mod)
    await mod.add_user("vic", Role.VIEWER)
    attachment = {"sha256": "a" * 64, "type": "image/png", "size": 10}
    async with mod.client() as client:
        upload = await client.post(
            "/api/media", content=png(), headers={**auth, "content-type": "image/png"}
        )
        create = await client.post(
            "/api/requests",
            json={"action": "tweet", "payload": {"media": {"attachments": [attachment]}}},
            headers=auth,
        )
        await mod.login(client, "vic")
        thumb = await client.get(f"/media/{'a' * 64}")
    assert [upload.status_code, create.status_code, thumb.status_code] == [503, 503, 503]


async def test_uploads_stop_at_the_free_space_floor(mod: Harness) -> None:
    """Any author could fill the disk the ledger database lives on: below `[media]
    min_free_mb` an upload is 507, nothing is stored and no spool file is left behind."""
    auth = await author_token(mod)
    spool = mod.deps.media_tmp_dir
    spool.mkdir(parents=True, exist_ok=True)
    mod.deps.media_min_free_bytes = shutil.disk_usage(spool).free + 2**40  # a floor never met
    async with mod.client() as client:
        refused = await client.post(
            "/api/media", content=png(seed=11), headers={**auth, "content-type": "image/png"}
        )
        await mod.login(client, "ann")
        page = await client.get("/requests/new")
        form = await client.post(
            "/requests/new",
            data={"csrf_token": csrf_from(page.text), "text": "look"},
            files={"media1": ("a.png", png(seed=12), "image/png")},
        )
        mod.deps.media_min_free_bytes = 0
        accepted = await client.post(
            "/api/media", content=png(seed=11), headers={**auth, "content-type": "image/png"}
        )
    assert refused.status_code == 507, refused.text
    assert "disk free" in refused.json()["detail"]
    assert form.status_code == 507, form.text
    assert list(spool.iterdir()) == []
    stored = {p.name for p in (spool.parent / "media").rglob("*") if p.is_file()}
    assert hashlib.sha256(png(seed=12)).hexdigest() not in stored
    assert accepted.status_code == 201


@pytest.mark.parametrize("csrf_in", ["form", "header"])
async def test_a_form_of_many_small_parts_is_400(mod: Harness, csrf_in: str) -> None:
    """The upload routes take 520 MB bodies and a form's small parts are held in memory: a
    form of 200 small files (or 200 fields) is refused, not parsed, whichever of the CSRF
    check and the page reads it first."""
    await mod.add_user("ann", Role.AUTHOR)
    async with mod.client() as client:
        await mod.login(client, "ann")
        token = csrf_from((await client.get("/requests/new")).text)
        data = {"text": "x"} | ({"csrf_token": token} if csrf_in == "form" else {})
        headers = {"x-csrf-token": token} if csrf_in == "header" else {}
        files = {f"extra{n}": (f"{n}.png", png(seed=n), "image/png") for n in range(200)}
        many_files = await client.post("/requests/new", data=data, files=files, headers=headers)
        fields = data | {f"field{n}": "y" for n in range(200)}
        many_fields = await client.post(
            "/requests/new", data=fields, files={"media1": ("a.png", png(), "image/png")},
            headers=headers,
        )  # fmt: skip
        four = await client.post(
            "/requests/new", data=data, headers=headers,
            files={f"media{n}": (f"{n}.png", png(seed=300 + n), "image/png") for n in (1, 2, 3, 4)},
        )  # fmt: skip
    assert many_files.status_code == 400, many_files.text
    assert "Too many files" in many_files.text
    assert many_fields.status_code == 400, many_fields.text
    assert four.status_code == 303, four.text


async def test_each_user_has_a_daily_upload_budget(mod: Harness) -> None:
    """Past `[media] max_upload_mb_per_user_day` one author's uploads (API and New form) are
    429 for the rest of the UTC day; another author is not affected."""
    auth = await author_token(mod)
    await mod.add_user("bob", Role.AUTHOR)
    bob = {"authorization": f"Bearer {await mod.bearer('bob')}"}
    first, second = png(seed=31), png(seed=32)
    mod.deps.media_user_day_bytes = len(first) + 1  # one file fits, the second passes it
    raw = {"content-type": "image/png"}
    async with mod.client() as client:
        one = await client.post("/api/media", content=first, headers={**auth, **raw})
        two = await client.post("/api/media", content=second, headers={**auth, **raw})
        three = await client.post("/api/media", content=png(seed=33), headers={**auth, **raw})
        other = await client.post("/api/media", content=png(seed=34), headers={**bob, **raw})
        await mod.login(client, "ann")
        page = await client.get("/requests/new")
        form = await client.post(
            "/requests/new",
            data={"csrf_token": csrf_from(page.text), "text": "look"},
            files={"media1": ("a.png", png(seed=35), "image/png")},
        )
    assert [one.status_code, two.status_code] == [201, 201]  # under the budget when started
    assert three.status_code == 429, three.text
    assert "daily upload budget" in three.json()["detail"]
    assert form.status_code == 429, form.text
    assert other.status_code == 201
    stored = {p.name for p in (mod.deps.media_tmp_dir.parent / "media").rglob("*")}
    assert hashlib.sha256(png(seed=33)).hexdigest() not in stored
