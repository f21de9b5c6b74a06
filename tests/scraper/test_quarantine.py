"""A scraped item the parser cannot read is quarantined; the page, the run and the job go on."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from twitstack.scraper.jobs import Job
from twitstack.scraper.parse import parse_page
from twitstack.writes import keys

pytestmark = pytest.mark.anyio


def _job() -> Job:
    return Job(name="watch", kind="search", target="python", interval_s=60.0, limit=1000,
               proxy_group=None, draft=None)  # fmt: skip


def test_parse_page_keeps_the_readable_tweets_around_a_bad_one() -> None:
    """One entry with a count that is not a number: the other tweets are parsed, it is listed."""

    def entry(rest_id: str, replies: object) -> dict[str, Any]:
        result = {"__typename": "Tweet", "rest_id": rest_id,
                  "legacy": {"full_text": "hi", "reply_count": replies}}  # fmt: skip
        return {"entryId": f"tweet-{rest_id}",
                "content": {"itemContent": {"tweet_results": {"result": result}}}}  # fmt: skip

    response = {"instructions": [{"entries": [entry("1", 0), entry("2", "many"), entry("3", 1)]}]}
    page = parse_page(response)
    assert [t.id for t in page.tweets] == [1, 3]
    [bad] = page.unreadable
    assert (bad.ref, bad.reason) == ("2", "malformed_tweet")
    assert "many" in bad.detail


async def test_malformed_tweet_is_quarantined_and_the_run_succeeds(
    fake_x: Any, make_scraper: Any, redis: Redis
) -> None:
    """The run is ok, the good tweets are stored, the watermark moves; quarantined once."""
    async with make_scraper() as s:
        with anyio.fail_after(30):
            await s.runner.run(_job())
            [bad] = fake_x.fake.corpus.add_tweets(1, text="python mangled", malformed=True)
            good = fake_x.fake.corpus.add_tweets(2, text="python fine")
            run = await s.runner.run(_job())
            again = await s.runner.run(_job())
        assert (run.status, run.new) == ("ok", 2)
        assert again.status == "ok"
        stored = {int(row["id"]) for row in await s.store.run_tweets("watch", run.run_id)}
        assert stored == {tweet.id for tweet in good}
        state = await s.store.job_state("watch")
        assert state.watermark == str(good[-1].id)
        value = s.metrics.quarantined.labels(source="scraped_item", reason="malformed_tweet")
        assert value._value.get() == 1
    [entry] = [json.loads(raw) for raw in await redis.lrange(keys.QUARANTINE, 0, -1)]
    assert (entry["service"], entry["source"], entry["ref"]) == (
        "scraper",
        "scraped_item",
        f"watch:{bad.id}",
    )
