"""twscrape's real code path (pool, queue client, httpx) against the GraphQL fake on loopback."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest

from twitstack.scraper.jobs import Job
from twitstack.scraper.models import GraphQLDriftError, ResponseEvent, Signal
from twitstack.scraper.twscrape_adapter import TwscrapeAccounts, TwscrapeClient

pytestmark = pytest.mark.anyio


def _job(kind: str, target: str, *, limit: int = 1000) -> Job:
    return Job(
        name=f"t-{kind}", kind=kind, target=target, interval_s=60.0, limit=limit,  # type: ignore[arg-type]
        proxy_group=None, draft=None,
    )  # fmt: skip


def _client(accounts: TwscrapeAccounts, events: list[ResponseEvent]) -> TwscrapeClient:
    return TwscrapeClient(
        accounts.accounts_db, wait_timeout_s=0.5, wait_interval_s=0.05, observer=events.append
    )


async def test_search_follows_cursors_through_every_page(fake_x: Any, accounts: Any) -> None:
    """Search pages are followed by their Bottom cursor until the fake has no more."""
    events: list[ResponseEvent] = []
    expected = [t.id for t in fake_x.fake.corpus.search("python")]
    got: list[int] = []
    with anyio.fail_after(20):
        async for page in _client(accounts, events).search("python", limit=10_000):
            got.extend(t.id for t in page.tweets)
    assert got == expected
    cursors = [r.variables.get("cursor") for r in fake_x.fake.seen("SearchTimeline")]
    assert cursors[0] is None
    assert len({c for c in cursors if c}) == len(cursors) - 1 >= 2


async def test_tweet_detail_maps_every_column(fake_x: Any, accounts: Any) -> None:
    """TweetDetail comes back as a ScrapedTweet with the synthetic tweet's fields."""
    synth = next(t for t in fake_x.fake.corpus.tweets if t.in_reply_to is not None)
    with anyio.fail_after(10):
        tweet = await _client(accounts, []).tweet(synth.id)
    assert tweet is not None
    assert (tweet.id, tweet.author_username, tweet.text) == (
        synth.id, synth.author.screen_name, synth.text,
    )  # fmt: skip
    assert (tweet.like_count, tweet.view_count, tweet.lang) == (
        synth.likes,
        synth.views,
        synth.lang,
    )
    assert tweet.in_reply_to_id == synth.in_reply_to.id  # type: ignore[union-attr]
    assert tweet.created_at == synth.created_at
    json.dumps(tweet.raw)  # raw JSON stays serialisable


async def test_user_timeline_by_screen_name(fake_x: Any, accounts: Any) -> None:
    """A screen name is resolved through UserByScreenName, then UserTweets is paged."""
    user = fake_x.fake.corpus.users[3]
    client = _client(accounts, [])
    with anyio.fail_after(20):
        user_id = await client.user_id(user.screen_name)
        assert user_id == user.id
        got = [t.id async for page in client.user_tweets(user_id, limit=1000) for t in page.tweets]
    assert got == [t.id for t in fake_x.fake.corpus.timeline(user.id)]


async def test_rate_limit_with_reset_rotates_to_the_other_account(
    fake_x: Any, accounts: TwscrapeAccounts
) -> None:
    """A 429 with x-rate-limit-reset locks acc1 until the reset and acc2 serves the call."""
    fake_x.fake.inject("rate_limit", account="t1", op="SearchTimeline")
    events: list[ResponseEvent] = []
    with anyio.fail_after(20):
        pages = [p async for p in _client(accounts, events).search("python", limit=20)]
    assert pages
    assert pages[0].tweets
    assert [(e.username, e.signal) for e in events[:2]] == [
        ("acc1", Signal.RATE_LIMITED), ("acc2", Signal.OK),
    ]  # fmt: skip
    acc1 = await accounts.get("acc1")
    assert acc1 is not None
    assert acc1.active
    assert acc1.locks["SearchTimeline"].timestamp() > time.time() + 600


async def test_code_32_marks_the_account_inactive(fake_x: Any, accounts: TwscrapeAccounts) -> None:
    """401 code 32 makes twscrape deactivate acc1; acc2 still answers."""
    fake_x.fake.inject("auth_failed", account="t1")
    events: list[ResponseEvent] = []
    with anyio.fail_after(20):
        tweet = await _client(accounts, events).tweet(fake_x.fake.corpus.tweets[0].id)
    assert tweet is not None
    acc1 = await accounts.get("acc1")
    assert acc1 is not None
    assert not acc1.active
    assert "(32)" in (acc1.error_msg or "")
    assert events[0].signal is Signal.AUTH_FAILED


async def test_outdated_features_raise_one_clear_error(fake_x: Any, accounts: Any) -> None:
    """Code 336 surfaces as GraphQLDriftError naming the fix, after a single request."""
    fake_x.fake.inject("features_outdated", times=10)
    with anyio.fail_after(10), pytest.raises(GraphQLDriftError, match="upgrade twscrape"):
        async for _ in _client(accounts, []).search("python", limit=20):
            pass
    assert len(fake_x.fake.seen("SearchTimeline")) == 1


async def test_suspended_account_is_quarantined_and_empty_run_is_suspect(
    fake_x: Any, make_scraper: Any
) -> None:
    """403 code 64 returns nothing through twscrape; the run says suspect, acc1 is quarantined."""
    fake_x.fake.inject("suspended", account="t1", times=100)
    async with make_scraper() as s:
        with anyio.fail_after(20):
            outcome = await s.runner.run(_job("search", "python"))
        assert (outcome.status, outcome.error_kind, outcome.fetched) == (
            "failed", "suspect_empty", 0,
        )  # fmt: skip
        acc1 = await s.accounts.get("acc1")
        assert acc1 is not None
        assert acc1.quarantined
        assert (await s.store.job_state("t-search")).watermark is None
        with anyio.fail_after(20):
            retry = await s.runner.run(_job("search", "python"))
        assert retry.status == "ok"
        assert retry.new > 0


async def test_html_503_counts_as_a_block_not_as_no_results(fake_x: Any, make_scraper: Any) -> None:
    """An HTML 503 page ends twscrape's generator silently; the run records a block."""
    fake_x.fake.inject("html_503", op="SearchTimeline")
    async with make_scraper() as s:
        with anyio.fail_after(20):
            outcome = await s.runner.run(_job("search", "python"))
        assert (outcome.status, outcome.error_kind) == ("failed", "blocked")
        errors = s.metrics.run_errors.labels(scrape_job="t-search", kind="blocked")._value.get()
        assert errors == 1
        assert (await s.store.job_state("t-search")).watermark is None


async def test_probe_reinstates_a_quarantined_account(fake_x: Any, make_scraper: Any) -> None:
    """A quarantined account that answers a probe is active again."""
    async with make_scraper() as s:
        await s.health.quarantine("acc1", "suspended (64)")
        with anyio.fail_after(20):
            await s.health.probe_due(include_active=False, include_quarantined=True)
        acc1 = await s.accounts.get("acc1")
        assert acc1 is not None
        assert acc1.active
        assert fake_x.fake.seen("UserByScreenName")[-1].account == "t1"
