"""`twitstack enqueue thread`, `--poll`, `--quote`: the shapes reach the queue, hostile ones not."""

from __future__ import annotations

import pytest
import redis

from tests.ops.conftest import invoke
from twitstack.core.config import Settings
from twitstack.writes import keys
from twitstack.writes.models import WriteAction
from twitstack.writes.wire import decode_write_request


def _queued(sync_redis: redis.Redis) -> list[bytes]:
    items = sync_redis.lrange(keys.WRITE_QUEUE, 0, -1)
    return [item if isinstance(item, bytes) else item.encode() for item in items]


def test_thread_parts_are_queued_in_order(
    settings: Settings, sync_redis: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each PART becomes one part of a thread request, in the order given."""
    assert invoke(settings, "enqueue", "thread", "part 1", "part 2", "part 3") == 0
    [raw] = _queued(sync_redis)
    request = decode_write_request(raw)
    assert capsys.readouterr().out.strip() == request.id
    assert request.action is WriteAction.THREAD
    assert request.payload == {"parts": [{"text": f"part {i}"} for i in (1, 2, 3)]}


def test_poll_options_and_minutes_make_a_poll(settings: Settings, sync_redis: redis.Redis) -> None:
    """--poll repeated and --poll-minutes give X's poll object."""
    argv = ["tweet", "pick one", "--poll", "a", "--poll", "b", "--poll-minutes", "60"]
    assert invoke(settings, "enqueue", *argv) == 0
    request = decode_write_request(_queued(sync_redis)[0])
    assert request.payload == {
        "text": "pick one",
        "poll": {"options": ["a", "b"], "duration_minutes": 60},
    }


@pytest.mark.parametrize(
    ("quote", "expected"),
    [
        ("https://x.com/someone/status/1234567890?s=20", "1234567890"),
        ("twitter.com/someone/status/42", "42"),
        ("https://mobile.twitter.com/i/web/status/77/", "77"),
        ("987", "987"),
    ],
)
def test_quote_takes_an_id_or_a_post_url(
    settings: Settings, sync_redis: redis.Redis, quote: str, expected: str
) -> None:
    """A status URL on x.com or twitter.com is reduced to its post id."""
    assert invoke(settings, "enqueue", "tweet", "look", "--quote", quote) == 0
    request = decode_write_request(_queued(sync_redis)[0])
    assert request.payload == {"text": "look", "quote_tweet_id": expected}


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["thread", *[f"p{i}" for i in range(26)]], "payload.parts: expected a list of 2-25"),
        (["thread", "only one"], "payload.parts: expected a list of 2-25"),
        (["thread", "fine", "  "], "payload.parts[1].text: expected non-blank text"),
        (["thread", "fine", "x" * 281], "payload.parts[1].text: expected at most 280"),
        (["thread", "same", "same"], "payload.parts[1].text: expected distinct part texts"),
        (["tweet", "t", *[a for o in "abcde" for a in ("--poll", o)], "--poll-minutes", "60"],
         "payload.poll.options: expected a list of 2-4 options"),
        (["tweet", "t", "--poll", "a", "--poll", "b" * 26, "--poll-minutes", "60"],
         "payload.poll.options[1]: expected a string of 1-25 characters"),
        (["tweet", "t", "--poll", "a", "--poll", "b", "--poll-minutes", "4"],
         "payload.poll.duration_minutes: expected an integer 5-10080"),
        (["tweet", "t", "--poll", "a", "--poll", "b"], "expected poll options and a duration"),
        (["tweet", "t", "--quote", "https://example.com/u/status/1"],
         "payload.quote_tweet_id: expected a post id"),
        (["tweet", "t", "--quote", "https://x.com/u/likes"], "payload.quote_tweet_id"),
        (["tweet", "t", "--quote", "1", "--poll", "a", "--poll", "b", "--poll-minutes", "9"],
         "expected at most one of media, poll, quote_tweet_id"),
    ],
)  # fmt: skip
def test_hostile_shapes_exit_2_with_a_reason_and_queue_nothing(
    settings: Settings,
    sync_redis: redis.Redis,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    reason: str,
) -> None:
    """Refused before Redis: exit 2, the rule broken on stderr, write_queue untouched."""
    assert invoke(settings, "enqueue", *argv) == 2
    assert reason in capsys.readouterr().err
    assert _queued(sync_redis) == []
