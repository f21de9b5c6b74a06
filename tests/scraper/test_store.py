"""TweetStore: dedup by id, counts and last_seen on re-sightings, runs, watermarks, retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from twitstack.scraper.db import open_database
from twitstack.scraper.models import ScrapedTweet
from twitstack.scraper.store import TweetStore

pytestmark = pytest.mark.anyio


def tweet(tweet_id: int, *, likes: int = 0, text: str = "hello") -> ScrapedTweet:
    return ScrapedTweet(
        id=tweet_id, author_id=9, author_username="alice", text=text,
        created_at=datetime(2026, 1, 1, tzinfo=UTC), lang="en", reply_count=0, retweet_count=0,
        like_count=likes, quote_count=0, view_count=None, conversation_id=tweet_id,
        in_reply_to_id=None, in_reply_to_user_id=None, quoted_id=None,
        quoted_author_username=None, mentioned_usernames=(), raw={"rest_id": str(tweet_id)},
    )  # fmt: skip


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TweetStore]:
    async with open_database(tmp_path / "s.db") as conn:
        yield TweetStore(conn)


async def test_resighting_updates_counts_not_rows(store: TweetStore) -> None:
    """A tweet seen twice is one row; its counts and last_seen follow the later sighting."""
    first = await store.upsert([tweet(1), tweet(2)], job="j", run_id=1, now=10.0)
    second = await store.upsert([tweet(2, likes=5), tweet(3)], job="j", run_id=2, now=20.0)
    assert [t.id for t in first.new] == [1, 2]
    assert ([t.id for t in second.new], second.duplicates) == ([3], 1)
    rows = {r["id"]: r for r in await store.search(job="j")}
    assert (rows["2"]["like_count"], rows["2"]["last_seen"], rows["2"]["seen_count"]) == (
        5,
        20.0,
        2,
    )
    assert rows["2"]["first_run_id"] == 1


async def test_watermark_moves_only_with_a_successful_run(store: TweetStore) -> None:
    """A failed run leaves the watermark where the last good run put it."""
    run1 = await store.begin_run("j", now=1.0)
    await store.finish_run("j", run1, now=2.0, status="ok", fetched=1, new=1, duplicates=0,
                           watermark="100")  # fmt: skip
    run2 = await store.begin_run("j", now=3.0)
    await store.finish_run("j", run2, now=4.0, status="failed", fetched=1, new=1, duplicates=0,
                           error="blocked", watermark="200")  # fmt: skip
    state = await store.job_state("j")
    assert (state.watermark, state.last_run_id, state.last_success) == ("100", 2, 2.0)


async def test_retention_drops_tweets_not_seen_since_the_cutoff(store: TweetStore) -> None:
    await store.upsert([tweet(1)], job="j", run_id=1, now=10.0)
    await store.upsert([tweet(2)], job="j", run_id=1, now=50.0)
    assert await store.purge_older_than(30.0) == 1
    assert [r["id"] for r in await store.search()] == ["2"]


async def test_search_filters_by_text_and_author(store: TweetStore) -> None:
    await store.upsert([tweet(1, text="50% off"), tweet(2, text="nothing")], job="j", run_id=1,
                       now=1.0)  # fmt: skip
    assert [r["id"] for r in await store.search(text="50%")] == ["1"]
    assert await store.search(author="@bob") == []
