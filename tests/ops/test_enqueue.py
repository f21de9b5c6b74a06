"""`twitstack enqueue`: validated exactly like queue messages, pushed, id printed."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
import redis

from tests.conftest import free_port
from tests.ops.conftest import invoke
from twitstack.core.config import Settings
from twitstack.ops.dead_letter_tools import cli_actor
from twitstack.writes import keys
from twitstack.writes.errors import WireFormatError
from twitstack.writes.models import ModerationStatus, WriteAction
from twitstack.writes.wire import decode_write_request


def _queued(sync_redis: redis.Redis) -> list[bytes]:
    items = sync_redis.lrange(keys.WRITE_QUEUE, 0, -1)
    return [item if isinstance(item, bytes) else item.encode() for item in items]


def test_tweet_is_pushed_as_a_pending_request_and_its_id_printed(
    settings: Settings, sync_redis: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reply lands on write_queue as a message the writer's decoder accepts."""
    code = invoke(settings, "enqueue", "tweet", "hello from ops", "--reply-to", "1234")
    captured = capsys.readouterr()
    out = captured.out.strip()
    assert code == 0
    [raw] = _queued(sync_redis)
    request = decode_write_request(raw)
    assert out == request.id
    # The enqueue is logged (on stderr) with the request it made, as an operator filters it.
    [logged] = [json.loads(line) for line in captured.err.splitlines() if "enqueued" in line]
    assert logged["event"] == "ops.request_enqueued"
    assert (logged["request_id"], logged["account"], logged["action"]) == (
        request.id,
        request.account,
        "tweet",
    )
    assert request.action is WriteAction.TWEET
    assert request.moderation is ModerationStatus.PENDING
    assert request.payload == {
        "text": "hello from ops",
        "reply": {"in_reply_to_tweet_id": "1234"},
    }
    assert request.account == settings.writer.default_account
    assert request.author == cli_actor()


def test_dm_and_delete_carry_their_options(
    settings: Settings, sync_redis: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """Account, author, not_before and expires_at reach the message; each call gets a new id."""
    options = [
        "--account", "brand", "--author", "alice",
        "--not-before", "2031-01-01T09:00:00+01:00", "--expires-at", "2031-01-02T00:00:00Z",
    ]  # fmt: skip
    assert invoke(settings, "enqueue", "dm", "1001", "psst", *options) == 0
    assert invoke(settings, "enqueue", "delete", "987654321", *options) == 0
    ids = capsys.readouterr().out.split()
    dm, delete = (decode_write_request(raw) for raw in _queued(sync_redis))
    assert [dm.id, delete.id] == ids
    assert dm.id != delete.id
    assert dm.payload == {"recipient_id": "1001", "text": "psst"}
    assert delete.payload == {"tweet_id": "987654321"}
    for request in (dm, delete):
        assert request.account == "brand"
        assert request.author == "alice"
        assert request.not_before is not None
        assert request.not_before.isoformat() == "2031-01-01T08:00:00+00:00"
        assert request.expires_at is not None
        assert request.expires_at.isoformat() == "2031-01-02T00:00:00+00:00"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tweet", "   "], None),
        (["tweet", "x" * 300], None),
        (["tweet", "hi", "--quote", "12a"], None),
        (["dm", "not-a-user", "hello"], None),
        (["delete", "abc"], None),
        (["tweet", "hi", "--account", "no spaces allowed"], None),
        (["tweet", "hi", "--not-before", "tomorrow"], None),
        (["tweet", "hi", "--expires-at", "2031-01-01T09:00:00"], "expected a date-time"),
    ],
)
def test_invalid_input_exits_2_with_the_decoders_message(
    settings: Settings,
    sync_redis: redis.Redis,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str | None,
) -> None:
    """Nothing is queued; stderr carries the message the wire decoder gives for the same data."""
    code = invoke(settings, "enqueue", *argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert _queued(sync_redis) == []
    expected = _decoder_message(argv)
    assert err == f"twitstack: {expected}"
    if message is not None:
        assert message in err


def _decoder_message(argv: list[str]) -> str:
    """What decode_write_request says about the same request written as a raw message."""
    action, *rest = argv
    options = dict(zip(rest[1::2], rest[2::2], strict=False)) if action != "dm" else {}
    if action == "tweet":
        payload: dict[str, object] = {"text": rest[0]}
        if "--quote" in options:
            payload["quote_tweet_id"] = options["--quote"]
    elif action == "dm":
        payload = {"recipient_id": rest[0], "text": rest[1]}
    else:
        payload = {"tweet_id": rest[0]}
    data: dict[str, object] = {"action": action, "payload": payload}
    names = {"--account": "account", "--not-before": "not_before", "--expires-at": "expires_at"}
    data.update({names[k]: v for k, v in options.items() if k in names})
    with pytest.raises(WireFormatError) as caught:
        decode_write_request(json.dumps(data).encode())
    return caught.value.message


def test_text_dash_reads_stdin(
    settings: Settings,
    sync_redis: redis.Redis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`-` takes the DM text from stdin, keeping it out of the process list."""
    monkeypatch.setattr("sys.stdin", io.StringIO("secret words\n"))
    assert invoke(settings, "enqueue", "dm", "1001", "-") == 0
    [raw] = _queued(sync_redis)
    assert decode_write_request(raw).payload["text"] == "secret words"


def test_unreachable_redis_is_one_line_and_exit_1(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    """With Redis down the command fails fast with a hint, not a traceback."""
    settings = make_settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        supervisor={"redis_startup_timeout_s": 0.5},
    )
    assert invoke(settings, "enqueue", "tweet", "hello") == 1
    err = capsys.readouterr()
    assert "cannot reach Redis" in err.err
    assert err.out == ""
