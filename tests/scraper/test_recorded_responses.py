"""X's real GraphQL responses (recorded by twscrape) through twitstack's real code path."""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
import pytest

from tests.scraper.recorded import THREAD_ID, XDEVELOPERS_ID, recorded
from twitstack.core.sections.scraper import DraftRuleSpec
from twitstack.scraper.jobs import Job
from twitstack.scraper.models import ScrapedTweet
from twitstack.scraper.parse import parse_page
from twitstack.scraper.twscrape_adapter import twscrape_parse
from twitstack.writes.keys import WRITE_QUEUE
from twitstack.writes.wire import decode_write_request

pytestmark = pytest.mark.anyio
_OPS = {"search": "SearchTimeline", "user_tweets": "UserTweets"}


def _job(kind: str, target: str, draft: DraftRuleSpec | None = None) -> Job:
    return Job(
        name=f"rec-{kind}", kind=kind, target=target, interval_s=60.0, limit=1000,  # type: ignore[arg-type]
        proxy_group=None, draft=draft,
    )  # fmt: skip


def _ours(name: str) -> dict[int, ScrapedTweet]:
    page = parse_page(recorded(name))
    return {t.id: t for t in (*page.tweets, *page.embedded)}


@pytest.mark.parametrize("name", ["search", "user_tweets", "tweet_details"])
def test_parser_matches_twscrape_field_by_field(name: str) -> None:
    """Every tweet twscrape yields (quoted ones included) is parsed, and every compared field
    agrees: full retweet text, views, quoted author, mentions, links, counts, dates."""
    ours, theirs = _ours(name), {t.id: t for t in twscrape_parse(recorded(name))}
    assert set(ours) == set(theirs)
    for tweet_id, mine in ours.items():
        twin = theirs[tweet_id]
        for f in dataclasses.fields(mine):
            if not f.compare:
                continue
            got, want = getattr(mine, f.name), getattr(twin, f.name)
            if f.name == "quoted_id" and want is None:
                # twscrape drops the id when the quoted tweet is not in the response; X named it.
                legacy = mine.raw.get("legacy") or {}
                want = int(legacy.get("quoted_status_id_str") or 0) or None
            assert got == want, (tweet_id, f.name)


def test_retweets_of_quotes_name_the_quoted_author_and_carry_views() -> None:
    """The recorded timeline's retweets: full text, the original's views, the quoted author."""
    tweets = [t for t in _ours("user_tweets").values() if t.retweeted is not None]
    assert len(tweets) == 16
    assert not [t for t in tweets if t.text.endswith("…") and not t.original.text.endswith("…")]
    assert all(t.view_count is not None for t in tweets)
    quoting = [t for t in tweets if t.quoted_id is not None]
    assert quoting
    assert all(t.quoted_author_username for t in quoting)


@pytest.mark.parametrize("name", ["search", "user_tweets"])
async def test_job_stores_what_twscrape_parses(fake_x: Any, make_scraper: Any, name: str) -> None:
    """A job fed the recorded page stores every tweet twscrape yields, quoted ones as tweets of
    their own, with twscrape's text (retweets in full), counts, views and links."""
    fake_x.fake.record(_OPS[name], recorded(name))
    target = str(XDEVELOPERS_ID) if name == "user_tweets" else "tesla"
    theirs = {t.id: t for t in twscrape_parse(recorded(name))}
    async with make_scraper() as s:
        with anyio.fail_after(30):
            outcome = await s.runner.run(_job("user_tweets" if name != "search" else name, target))
        rows = {int(r["id"]): r async for r in s.store.export(with_raw=False)}
    assert outcome.status == "ok"
    assert set(rows) == set(theirs)
    for tweet_id, twin in theirs.items():
        row = rows[tweet_id]
        assert row["text"] == twin.text, tweet_id
        assert (row["author_username"], row["like_count"], row["view_count"]) == (
            twin.author_username, twin.like_count, twin.view_count,
        )  # fmt: skip
        want_rt = str(twin.retweeted_id) if twin.retweeted_id else None
        assert (row["retweeted_id"], row["quoted_author_username"]) == (
            want_rt, twin.quoted_author_username,
        )  # fmt: skip


async def test_quote_drafts_from_a_timeline_point_at_the_original(
    fake_x: Any, make_scraper: Any, redis: Any
) -> None:
    """Retweets in a timeline get quote drafts of the tweet they repeat, by its author."""
    fake_x.fake.record("UserTweets", recorded("user_tweets"))
    rule = DraftRuleSpec(
        action="quote", template="Worth a read, {{ tweet.author }}", as_account="team",
        max_per_run=1000,
    )  # fmt: skip
    timeline = parse_page(recorded("user_tweets")).tweets
    originals = {t.original.id: t.original for t in timeline}
    async with make_scraper() as s:
        with anyio.fail_after(30):
            outcome = await s.runner.run(_job("user_tweets", str(XDEVELOPERS_ID), rule))
    requests = [decode_write_request(m) for m in await redis.lrange(WRITE_QUEUE, 0, -1)]
    assert outcome.drafts == len(requests) == len(originals)
    for request in requests:
        original = originals[int(request.payload["quote_tweet_id"])]
        assert request.source is not None
        assert request.source["author"] == original.author_username
        assert request.payload["text"] == f"Worth a read, {original.author_username}"
    retweet_ids = {t.id for t in timeline if t.retweeted is not None}
    assert not {int(r.payload["quote_tweet_id"]) for r in requests} & retweet_ids


async def test_replies_without_mention_entities_are_not_flagged(
    fake_x: Any, make_scraper: Any
) -> None:
    """Replies whose `entities.user_mentions` X left out still mention @TwitterDev in their
    text: their reply drafts are not marked "X would refuse"."""
    fake_x.fake.record("TweetDetail", recorded("tweet_details"), focal_tweet_id=THREAD_ID)
    rule = DraftRuleSpec(template="Thanks!", as_account="TwitterDev", max_per_run=1000)
    replies = [t for t in _ours("tweet_details").values() if t.in_reply_to_id == THREAD_ID]
    mentioning = [t for t in replies if "twitterdev" in t.mentioned_usernames]
    assert len(mentioning) >= 20
    assert [t for t in mentioning if not (t.raw.get("legacy") or {}).get("entities", {}).get(
        "user_mentions")]  # fmt: skip
    async with make_scraper() as s:
        with anyio.fail_after(30):
            outcome = await s.runner.run(_job("replies", str(THREAD_ID), rule))
        drafts = s.metrics.drafts
        ok = drafts.labels(scrape_job="rec-replies", refusable="false")._value.get()
        refused = drafts.labels(scrape_job="rec-replies", refusable="true")._value.get()
    assert outcome.drafts == len(replies)
    assert (ok, refused) == (len(mentioning), len(replies) - len(mentioning))


async def test_by_id_job_counts_and_marks_gone_tweets(fake_x: Any, make_scraper: Any) -> None:
    """A deleted tweet (tombstone) and an id X never had (code 144) are counted, and a stored
    tweet that was deleted is marked, not silently dropped."""
    fake_x.fake.record("TweetDetail", recorded("tweet_details"), focal_tweet_id=THREAD_ID)
    synth = fake_x.fake.corpus.tweets[-1]
    job = _job("tweets", f"{THREAD_ID}, {synth.id}, 42")
    async with make_scraper() as s:
        with anyio.fail_after(30):
            first = await s.runner.run(job)
            fake_x.fake.delete(synth.id)
            second = await s.runner.run(job)
        rows = {int(r["id"]): r async for r in s.store.export(with_raw=False)}
        gone = s.metrics.tweets_gone.labels(scrape_job="rec-tweets")._value.get()
    assert (first.status, first.fetched, first.gone) == ("ok", 2, 1)
    assert (second.status, second.fetched, second.gone) == ("ok", 1, 2)
    assert gone == 3
    assert rows[synth.id]["deleted_at"] is not None
    assert rows[THREAD_ID]["deleted_at"] is None
