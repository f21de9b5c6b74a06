"""A single tweet and a thread's first part with the same text are rivals for one post."""

from __future__ import annotations

from datetime import UTC, datetime

from twitstack.writer.candidates import rivals
from twitstack.writer.thread_reconcile import _rivals as thread_rivals
from twitstack.writer.x_reads import PostedItem
from twitstack.writes.ledger_types import LedgerRecord
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _record(action: WriteAction, payload: dict[str, object]) -> LedgerRecord:
    request = WriteRequest(action=action, payload=payload, moderation=ModerationStatus.UNKNOWN)
    return LedgerRecord(request, 1, NOW, NOW, "writer:w1", "ambiguous:timeout", None)


def test_a_tweet_and_a_threads_first_part_rival_each_other() -> None:
    """Either one's reconciliation sees the other as a rival; a later part is no rival."""
    tweet = _record(WriteAction.TWEET, {"text": "same words"})
    thread = _record(WriteAction.THREAD, {"parts": [{"text": "same words"}, {"text": "more"}]})
    other = _record(WriteAction.THREAD, {"parts": [{"text": "first"}, {"text": "same words"}]})
    post = PostedItem(id="5", text="same words", created_at=NOW, author_id="1000")
    assert rivals(tweet, post, [thread, other]) == [thread]
    assert thread_rivals(thread, post, [tweet, other]) == [tweet]
