"""The writer posts media end to end against the fake X: uploads at send time, ids cached and
re-uploaded near expiry, chunked video with processing states, and clear failure states."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.media_files import mp4, png
from tests.support.moto import moto_server
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writes.media import Attachment
from twitstack.writes.media_store import ingest, open_configured_store
from twitstack.writes.models import ModerationStatus, WriteRequest

S = ModerationStatus
pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig(clock_start=1_800_000_000.0, clock_frozen=True)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], sandbox: RunningSandbox) -> Settings:
    return writer_settings(make_settings, sandbox.base_url)


async def stored(settings: Settings, data: bytes, alt: str | None = None) -> dict[str, Any]:
    """Put `data` in the configured store; the attachment record a producer would send."""
    async with open_configured_store(settings) as store:
        info = await ingest(store, [data], tmp_dir=settings.state_dir / "tmp")
    return Attachment(info.sha256, info.type, info.size, alt).to_dict()


def with_media(text: str, *attachments: dict[str, Any]) -> WriteRequest:
    payload = {"text": text, "media": {"attachments": list(attachments)}}
    return approved(replace(tweet(text), payload=payload))


def media_of(sandbox: RunningSandbox, text: str) -> list[Any]:
    (post,) = [p for p in sandbox.state.content.posts.values() if p.text == text]
    return [sandbox.state.media.items[m] for m in post.media_ids]


async def test_images_posted_with_alt_text(
    settings: Settings, redis: Redis, sandbox: RunningSandbox
) -> None:
    """Two images are uploaded (simple upload), alt text set, and the post carries both."""
    first = await stored(settings, png(seed=1), "a red square")
    second = await stored(settings, png(seed=2))
    request = with_media("two pictures", first, second)
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
        uploaded = writer.metric("writer_media_uploads_total", result="uploaded")
    items = media_of(sandbox, "two pictures")
    assert [m.sha256 for m in items] == [first["sha256"], second["sha256"]]
    assert [m.alt_text for m in items] == ["a red square", None]
    assert uploaded == 2
    record = await writer.record(request.id)
    assert record.request.payload["media"]["attachments"][0]["sha256"] == first["sha256"]


async def test_video_chunked_through_processing(
    settings: Settings, redis: Redis, sandbox: RunningSandbox, make_settings: Any
) -> None:
    """A 3 MB video goes up in 1 MB chunks, waits out pending → in_progress → succeeded."""
    settings = make_settings(
        writer=settings.writer.model_dump(), media={"chunk_bytes": 1024 * 1024}
    )
    video = await stored(settings, mp4(3 * 1024 * 1024 + 7), "a short clip")
    request = with_media("a video", video)
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
    (item,) = media_of(sandbox, "a video")
    assert item.state == "succeeded"
    assert item.polls == 2  # two STATUS polls before it was processed
    assert item.alt_text == "a short clip"
    assert item.media_type == "video/mp4"


async def test_cached_ids_reused_then_reuploaded_near_expiry(
    settings: Settings, redis: Redis, sandbox: RunningSandbox
) -> None:
    """A second post with the same file reuses the id; past 24 h minus the margin it is
    uploaded again, and the fake accepts only the fresh id."""
    picture = await stored(settings, png(seed=5), "same file")
    async with running_writer(settings, redis, sandbox) as writer:
        first, second = with_media("first", picture), with_media("second", picture)
        await writer.push(first)
        await writer.wait_states([first.id], {S.EXECUTED})
        await writer.push(second)
        await writer.wait_states([second.id], {S.EXECUTED})
        assert sandbox.state.media.uploads == 1
        sandbox.state.clock.advance(86_400 - 1800)  # inside the one-hour margin
        third = with_media("third", picture)
        await writer.push(third)
        await writer.wait_states([third.id], {S.EXECUTED})
    assert sandbox.state.media.uploads == 2
    assert media_of(sandbox, "first")[0].id == media_of(sandbox, "second")[0].id
    assert media_of(sandbox, "third")[0].id != media_of(sandbox, "first")[0].id


async def test_missing_file_goes_to_a_human_and_the_writer_goes_on(
    settings: Settings, redis: Redis, sandbox: RunningSandbox
) -> None:
    """An attachment whose file the store lacks: needs_review with the reason; nothing posted;
    the next request is executed."""
    ghost = {"sha256": "e" * 64, "type": "image/png", "size": 10, "alt_text": "gone"}
    lost, fine = with_media("lost file", ghost), approved(tweet("plain text"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(lost, fine)
        await writer.wait_states([lost.id], {S.NEEDS_REVIEW})
        await writer.wait_states([fine.id], {S.EXECUTED})
        record = await writer.record(lost.id)
        failures = writer.metric("writer_media_uploads_total", result="media_missing")
    assert record.last_reason == "media_missing"
    assert failures == 1
    assert [p.text for p in sandbox.state.content.posts.values()] == ["plain text"]


async def test_failed_processing_goes_to_a_human(
    settings: Settings, redis: Redis, sandbox: RunningSandbox
) -> None:
    """X failing to process a video is a state for a person, not a retry loop."""
    sandbox.state.media.fail_processing = True
    sandbox.state.media.processing_polls = 1
    request = with_media("broken video", await stored(settings, mp4(50_000)))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.NEEDS_REVIEW})
        record = await writer.record(request.id)
    assert record.last_reason == "media_processing_failed"
    assert sandbox.state.content.posts == {}


async def test_hostile_producer_messages_are_dead_lettered(
    settings: Settings, redis: Redis, sandbox: RunningSandbox
) -> None:
    """Unknown sha, a traversal in place of a hash, five images, a forged type: each is
    dead-lettered with its reason, and a good message behind them is still executed."""
    good_file = await stored(settings, png(seed=9))
    unknown = {"sha256": "1" * 64, "type": "image/png", "size": 10}
    images = [{**good_file, "sha256": f"{i:x}" * 64} for i in range(1, 6)]
    bad = [
        {"action": "tweet", "payload": {"text": "a", "media": {"attachments": [unknown]}}},
        {"action": "tweet", "payload": {"text": "b", "media": {"attachments": [
            {**good_file, "sha256": "../../../../etc/passwd"}]}}},
        {"action": "tweet", "payload": {"text": "c", "media": {"attachments": images}}},
        {"action": "tweet", "payload": {"text": "d", "media": {"attachments": [
            {**good_file, "type": "text/html"}]}}},
    ]  # fmt: skip
    good = approved(replace(tweet("fine"), payload={"text": "fine", "media": {
        "attachments": [good_file]}}))  # fmt: skip
    async with running_writer(settings, redis, sandbox) as writer:
        for message in bad:
            await writer.push_raw(json.dumps(message).encode())
        await writer.push(good)
        await writer.wait_states([good.id], {S.EXECUTED})
        letters = await writer.dead_letters()
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons == ["invalid_payload", "invalid_payload", "invalid_payload", "media_missing"]
    assert any("not in the media store" in str(letter["detail"]) for letter in letters)


async def test_x_dropping_a_cached_id_early_means_one_fresh_upload(
    settings: Settings, redis: Redis, sandbox: RunningSandbox
) -> None:
    """X forgets a media id before its stated expiry: the post using the cached id gets a 400,
    the request goes back to approved, is re-uploaded and posted once."""
    picture = await stored(settings, png(seed=6))
    async with running_writer(settings, redis, sandbox) as writer:
        first = with_media("before", picture)
        await writer.push(first)
        await writer.wait_states([first.id], {S.EXECUTED})
        sandbox.state.media.items.clear()  # X lost it
        second = with_media("after", picture)
        await writer.push(second)
        await writer.wait_states([second.id], {S.EXECUTED})
        refused = writer.metric("writer_media_uploads_total", result="cached_refused")
    assert refused == 1
    assert sandbox.state.media.uploads == 2
    assert sorted(p.text for p in sandbox.state.content.posts.values()) == ["after", "before"]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


async def test_image_post_from_an_s3_store(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox,
    moto_endpoint: str,
) -> None:  # fmt: skip
    """With minio_* set, files live in the bucket (moto) and the writer posts from there."""
    settings = writer_settings(
        lambda **kw: make_settings(
            minio_endpoint=moto_endpoint, minio_access_key="testing",
            minio_secret_key="testing", minio_bucket="media-e2e", **kw,
        ),
        sandbox.base_url,
    )  # fmt: skip
    picture = await stored(settings, png(seed=31), "from the bucket")
    assert not (settings.state_dir / "media").exists()  # not on local disk
    request = with_media("from s3", picture)
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
    (item,) = media_of(sandbox, "from s3")
    assert (item.sha256, item.alt_text) == (picture["sha256"], "from the bucket")


@pytest.mark.parametrize("kind", ["image", "video"])
async def test_a_stored_file_changed_under_its_hash_is_never_posted(
    settings: Settings, redis: Redis, sandbox: RunningSandbox, kind: str
) -> None:
    """Same size, other bytes (a tampered store): the hash check stops it before the post."""
    data = png(seed=12) if kind == "image" else mp4(80_000)
    record_of = await stored(settings, data)
    path = settings.state_dir / "media" / record_of["sha256"][:2] / record_of["sha256"]
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    request = with_media(f"tampered {kind}", record_of)
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.NEEDS_REVIEW})
        record = await writer.record(request.id)
    assert record.last_reason == "media_refused"
    assert sandbox.state.content.posts == {}


async def test_media_alone_is_a_post(
    settings: Settings, redis: Redis, sandbox: RunningSandbox
) -> None:
    """A payload without text (media carries the post) is sent without `text`."""
    picture = await stored(settings, png(seed=41), "only a picture")
    request = approved(replace(tweet("x"), payload={"media": {"attachments": [picture]}}))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
    (post,) = sandbox.state.content.posts.values()
    assert post.text == ""
    assert "text" not in post.body
    assert len(post.media_ids) == 1


async def test_an_unreachable_store_only_delays_the_post(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """S3 down at send time: the request waits (approved, media_transient), nothing is sent."""
    from tests.conftest import free_port

    settings = writer_settings(
        lambda **kw: make_settings(
            minio_endpoint=f"http://127.0.0.1:{free_port()}", minio_access_key="x",
            minio_secret_key="y", **kw,
        ),
        sandbox.base_url,
    )  # fmt: skip
    ghost = {"sha256": "c" * 64, "type": "image/png", "size": 10}
    request = with_media("store down", ghost)
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)

        async def waiting() -> bool:
            record = await writer.ledger.get(request.id)
            return record is not None and record.last_reason == "media_transient"

        await wait_until(waiting, timeout_s=20)
        record = await writer.record(request.id)
    assert record.state is S.APPROVED
    assert sandbox.state.content.posts == {}


async def test_oauth1_signed_multipart_upload(sandbox: RunningSandbox) -> None:
    """The multipart media upload verifies under OAuth 1.0a user context too."""
    import httpx

    from twitstack.writer.tokens import oauth1_auth
    from twitstack.writer.xapi_client import XApiClient

    auth = oauth1_auth(
        "sandbox-consumer-key", "sandbox-consumer-secret",
        "1000-sandbox-access-token", "sandbox-access-token-secret",
    )  # fmt: skip
    async with httpx.AsyncClient() as http:
        client = XApiClient(http, base_url=sandbox.base_url)
        outcome, body = await client.media(
            "POST", "/2/media/upload", auth=auth, auth_kind="oauth1",
            files={"media": png(seed=51)}, data={"media_category": "tweet_image"},
        )  # fmt: skip
    assert outcome.status == 200, outcome
    assert body["data"]["media_key"].startswith("3_")


async def test_a_media_id_planted_in_the_cache_is_not_posted(
    settings: Settings, redis: Redis, sandbox: RunningSandbox
) -> None:
    """Whoever can write `writes:*` in Redis must not change what was signed: a cache entry
    naming another file's media id for an approved file is ignored and the approved file is
    uploaded and posted."""
    from twitstack.writer.media_upload import cache_key

    old = await stored(settings, png(seed=41))
    approved_file = await stored(settings, png(seed=42), "the approved picture")
    async with running_writer(settings, redis, sandbox) as writer:
        first = with_media("earlier post", old)
        await writer.push(first)
        await writer.wait_states([first.id], {S.EXECUTED})
        planted_id = media_of(sandbox, "earlier post")[0].id
        target = Attachment(approved_file["sha256"], approved_file["type"],
                            approved_file["size"], approved_file["alt_text"])  # fmt: skip
        forged = {"media_id": planted_id, "expires_at": 1_900_000_000.0}
        await redis.set(cache_key("default", target), json.dumps(forged), ex=86_400)
        second = with_media("approved post", approved_file)
        await writer.push(second)
        await writer.wait_states([second.id], {S.EXECUTED})
    (posted,) = media_of(sandbox, "approved post")
    assert posted.sha256 == approved_file["sha256"]
    assert posted.id != planted_id


def test_durations_from_x_are_finite_and_bounded() -> None:
    """X's JSON read by Python may say NaN, Infinity or 1e999 for a duration: none of them
    reaches int() (OverflowError) or sleep() (ValueError)."""
    from twitstack.writer.media_upload import seconds_from_x

    answers = json.loads('[NaN, Infinity, -Infinity, 1e999, -5, true, "7", null, 30, 1e9]')
    found = [seconds_from_x(value, default=1.0, most=60.0) for value in answers]
    assert found == [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 30.0, 60.0]
