"""The WriteRequest model: the seed's snippet, dict round trips, strict from_dict."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from twitstack.writer.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.errors import WireFormatError
from twitstack.writes.models import Approval, format_time, parse_time, utcnow


def test_seed_snippet_serialises_to_json() -> None:
    """The seed's enqueue snippet works unchanged and yields the documented fields."""
    rc = WriteRequest(action=WriteAction.TWEET, payload={"text": "hello world"})
    data = json.loads(json.dumps(rc.to_dict()))
    assert data["action"] == "tweet"
    assert data["payload"] == {"text": "hello world"}
    assert data["moderation"] == "pending"
    assert data["account"] == "default"
    assert data["revision"] == 1
    assert data["created_at"].endswith("Z")
    assert len(data["id"]) == 32


def test_every_status_of_the_issue_exists() -> None:
    """ModerationStatus carries the seed's states and the extended ones."""
    assert {s.value for s in ModerationStatus} == {
        "pending", "approved", "rejected", "executed", "failed",
        "sending", "unknown", "expired", "needs_review",
    }  # fmt: skip


def test_from_dict_inverts_to_dict_with_every_field() -> None:
    """A request with all optional fields survives to_dict -> JSON -> from_dict."""
    now = datetime(2025, 7, 14, 12, 0, 0, 123456, tzinfo=UTC)
    request = WriteRequest(
        action=WriteAction.TWEET,
        payload={"text": "hi", "reply": {"in_reply_to_tweet_id": "123"}},
        created_at=now,
        moderation=ModerationStatus.APPROVED,
        id="req-1",
        account="brand",
        not_before=now + timedelta(hours=1),
        expires_at=now + timedelta(days=1),
        revision=3,
        author="alice",
        source={"id": "99", "author": "bob", "text": "q?", "counts": {"likes": 2}, "job": "j"},
        approval=Approval(key_id="k", approver="mod", approved_at=now, signature="sig"),
    )
    again = WriteRequest.from_dict(json.loads(json.dumps(request.to_dict())))
    assert again == request


def test_times_are_normalised_to_utc() -> None:
    """Offsets other than Z are accepted and converted to UTC."""
    parsed = parse_time("2025-07-14T14:00:00+02:00", "created_at")
    assert parsed == datetime(2025, 7, 14, 12, 0, tzinfo=UTC)
    assert format_time(datetime(2025, 7, 14, 14, 0, tzinfo=timezone(timedelta(hours=2)))) == (
        "2025-07-14T12:00:00.000000Z"
    )


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"action": "retweet", "payload": {}}, "action", "invalid_field"),
        ({"payload": {}}, "action", "missing_field"),
        ({"action": "tweet", "payload": {}, "colour": 1}, "colour", "unknown_field"),
        ({"action": "tweet", "payload": []}, "payload", "invalid_field"),
        ({"action": "tweet", "payload": {}, "id": "has space"}, "id", "invalid_field"),
        ({"action": "tweet", "payload": {}, "revision": True}, "revision", "invalid_field"),
        ({"action": "tweet", "payload": {}, "revision": 0}, "revision", "invalid_field"),
        ({"action": "tweet", "payload": {}, "created_at": "2025-07-14"}, "created_at", None),
        (
            {"action": "tweet", "payload": {}, "not_before": "2025-07-14T12:00:00"},
            "not_before",
            "invalid_field",
        ),
        ({"action": "tweet", "payload": {}, "source": {"x": 1}}, "source.x", "unknown_field"),
        ({"action": "tweet", "payload": {}, "approval": {"key_id": "k"}}, None, None),
    ],
)
def test_from_dict_names_the_bad_field(
    data: dict[str, object], field: str | None, reason: str | None
) -> None:
    """Each structural mistake raises WireFormatError naming the field."""
    with pytest.raises(WireFormatError) as caught:
        WriteRequest.from_dict(data)
    if field is not None:
        assert caught.value.field == field
        assert field in str(caught.value)
    if reason is not None:
        assert caught.value.reason_code == reason


def test_content_hash_covers_payload_account_action_and_schedule() -> None:
    """Changing any reviewed part (schedule included) changes the content hash; metadata not."""
    base = WriteRequest(action=WriteAction.TWEET, payload={"text": "a"}, id="x")
    same = WriteRequest(action=WriteAction.TWEET, payload={"text": "a"}, id="y", author="z")
    assert base.content_hash() == same.content_hash()
    variants = [
        WriteRequest(action=WriteAction.TWEET, payload={"text": "b"}),
        WriteRequest(action=WriteAction.TWEET, payload={"text": "a"}, account="other"),
        WriteRequest(action=WriteAction.DM, payload={"text": "a"}),
        WriteRequest(action=WriteAction.TWEET, payload={"text": "a"}, not_before=utcnow()),
        WriteRequest(action=WriteAction.TWEET, payload={"text": "a"}, expires_at=utcnow()),
    ]
    assert all(v.content_hash() != base.content_hash() for v in variants)
