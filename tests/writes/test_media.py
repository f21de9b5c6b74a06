"""Media by reference: sniffing, X's size and mix limits, the attachment shape, and signing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from twitstack.writes.errors import PayloadError
from twitstack.writes.media import (
    MB,
    MediaRefused,
    attachments_in,
    check_upload,
    media_category,
    sniff,
)
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.signing import ApprovalSigner, ApprovalVerifier, generate_private_key
from twitstack.writes.validation import validate_payload

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 "
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00"


def image(n: int, **extra: Any) -> dict[str, Any]:
    """An attachment record of a PNG whose hash is made of hex digit `n`."""
    return {"sha256": f"{n:x}" * 64, "type": "image/png", "size": 1000, **extra}


@pytest.mark.parametrize(
    ("head", "kind"),
    [(JPEG, "image/jpeg"), (PNG, "image/png"), (GIF, "image/gif"), (WEBP, "image/webp"),
     (MP4, "video/mp4"), (b"<svg xmlns=", None), (b"%PDF-1.4", None), (b"", None),
     (b"\x00\x00\x00\x20ftypqt  ", None), (b"RIFF\x24\x00\x00\x00AVI ", None)],
)  # fmt: skip
def test_sniff_reads_magic_bytes(head: bytes, kind: str | None) -> None:
    """The type comes from the bytes; a QuickTime or AVI container is not MP4 or WebP."""
    assert sniff(head) == kind


@pytest.mark.parametrize(
    ("head", "size", "reason"),
    [(PNG, 5 * MB + 1, "too_large"), (GIF, 15 * MB + 1, "too_large"),
     (MP4, 512 * MB + 1, "too_large"), (b"MZ\x90\x00", 10, "unsupported_type"),
     (PNG, 0, "empty")],
)  # fmt: skip
def test_check_upload_refuses_past_x_limits(head: bytes, size: int, reason: str) -> None:
    """One byte past X's limit per type is refused with a stable reason."""
    with pytest.raises(MediaRefused) as caught:
        check_upload(head, size)
    assert caught.value.reason == reason


def test_check_upload_accepts_at_the_limits() -> None:
    """Exactly 5 MB of PNG, 15 MB of GIF and 512 MB of MP4 pass."""
    assert check_upload(PNG, 5 * MB) == "image/png"
    assert check_upload(GIF, 15 * MB) == "image/gif"
    assert check_upload(MP4, 512 * MB) == "video/mp4"
    assert [media_category(t) for t in ("image/png", "image/gif", "video/mp4")] == [
        "tweet_image",
        "tweet_gif",
        "tweet_video",
    ]


@pytest.mark.parametrize(
    "attachments",
    [[image(1)], [image(i) for i in range(1, 5)],
     [{**image(1), "type": "video/mp4", "size": 512 * MB}],
     [{**image(2), "type": "image/gif", "alt_text": "x" * 1000}]],
)  # fmt: skip
def test_valid_attachments(attachments: list[dict[str, Any]]) -> None:
    """Up to 4 images, or one GIF, or one video pass; alt text up to 1,000 characters."""
    payload = {"text": "hi", "media": {"attachments": attachments}}
    validate_payload(WriteAction.TWEET, payload)
    assert [a.to_dict() for a in attachments_in(payload)] == attachments


@pytest.mark.parametrize(
    ("attachments", "field", "says"),
    [([image(i) for i in range(1, 6)], "payload.media.attachments", "1-4"),
     ([], "payload.media.attachments", "1-4"),
     ([image(1), {**image(2), "type": "video/mp4"}], "payload.media.attachments", "alone"),
     ([{**image(1), "type": "image/gif"}, {**image(2), "type": "image/gif"}],
      "payload.media.attachments", "alone"),
     ([image(1), image(1)], "payload.media.attachments", "distinct"),
     ([image(1, alt_text="x" * 1001)], "payload.media.attachments[0].alt_text", "1000"),
     ([image(1, name="../../etc/passwd")], "payload.media.attachments[0].name", "unknown"),
     ([{**image(1), "sha256": "../" + "a" * 61}], "payload.media.attachments[0].sha256", "hex"),
     ([{**image(1), "size": 5 * MB + 1}], "payload.media.attachments[0].size", "5242880"),
     ([{**image(1), "size": True}], "payload.media.attachments[0].size", "integer"),
     ([{**image(1), "type": "text/html"}], "payload.media.attachments[0].type", "text/html"),
     ([{"sha256": "a" * 64, "type": "image/png"}], "payload.media.attachments[0].size",
      "required")],
)  # fmt: skip
def test_invalid_attachments(attachments: list[Any], field: str, says: str) -> None:
    """Each rule names the field and says what it expected."""
    with pytest.raises(PayloadError) as caught:
        validate_payload(WriteAction.TWEET, {"text": "hi", "media": {"attachments": attachments}})
    assert caught.value.field == field
    assert says in caught.value.message


def test_media_ids_and_attachments_are_exclusive() -> None:
    """A payload names its media one way only; the old media_ids form still passes."""
    validate_payload(WriteAction.TWEET, {"text": "a", "media": {"media_ids": ["1"]}})
    with pytest.raises(PayloadError, match="both"):
        validate_payload(
            WriteAction.TWEET, {"media": {"media_ids": ["1"], "attachments": [image(1)]}}
        )


@pytest.mark.parametrize(
    "change",
    [lambda a: {**a, "sha256": "f" * 64}, lambda a: {**a, "alt_text": "a dog"},
     lambda a: {k: v for k, v in a.items() if k != "alt_text"}],
)  # fmt: skip
def test_attachment_change_voids_approval(change: Any) -> None:
    """Another file or other alt text under the same id and revision fails verification."""
    signer = ApprovalSigner(generate_private_key())
    verifier = ApprovalVerifier([signer.public_key])
    first = image(1, alt_text="a cat")
    request = WriteRequest(
        action=WriteAction.TWEET, payload={"text": "hi", "media": {"attachments": [first]}}
    )
    approved = signer.approve(request, approver="mod")
    assert verifier.check(approved).ok
    swapped = replace(approved, payload={"text": "hi", "media": {"attachments": [change(first)]}})
    check = verifier.check(swapped)
    assert not check.ok
    assert check.reason == "bad_signature"
