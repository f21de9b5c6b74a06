"""Job runs end to end: incremental watermarks, crash recovery, archive, leases, drafts."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from twitstack.core.sections.scraper import DraftRuleSpec
from twitstack.scraper.archive import TweetArchive
from twitstack.scraper.jobs import Job
from twitstack.scraper.lease import JobLease
from twitstack.writes.keys import WRITE_QUEUE
from twitstack.writes.wire import decode_write_request

pytestmark = pytest.mark.anyio


class _CrashError(Exception):
    """Stands in for the process dying between two pages."""


def _job(kind: str = "search", target: str = "python", **kw: Any) -> Job:
    fields: dict[str, Any] = {
        "name": "watch", "kind": kind, "target": target, "interval_s": 60.0, "limit": 1000,
        "proxy_group": None, "draft": None,
    }  # fmt: skip
    return Job(**{**fields, **kw})


async def test_incremental_runs_fetch_only_new_tweets(fake_x: Any, make_scraper: Any) -> None:
    """The second run asks X for tweets after the watermark and stores only the new ones
    (quoted tweets riding along are stored too, and count as new or duplicate, not fetched)."""
    async with make_scraper() as s:
        with anyio.fail_after(30):
            first = await s.runner.run(_job())
            hits = fake_x.fake.corpus.search("python")
            added = fake_x.fake.corpus.add_tweets(3, text="python fresh news")
            second = await s.runner.run(_job())
        assert first.status == "ok"
        assert first.fetched == len(hits)
        assert first.new == len({t.id for t in hits} | {t.quoted.id for t in hits if t.quoted})
        quoted = {t.quoted.id for t in added if t.quoted}
        assert (second.fetched, second.new + second.duplicates) == (3, 3 + len(quoted))
        last_query = fake_x.fake.seen("SearchTimeline")[-1].variables["rawQuery"]
        assert "since_id:" in last_query
        state = await s.store.job_state("watch")
        assert state.watermark == str(fake_x.fake.corpus.tweets[-1].id)


async def test_timeline_run_stops_at_the_watermark(fake_x: Any, make_scraper: Any) -> None:
    """A user timeline is paged only until it reaches tweets already seen."""
    user = fake_x.fake.corpus.users[2]
    job = _job("user_tweets", user.screen_name)
    async with make_scraper() as s:
        with anyio.fail_after(30):
            await s.runner.run(job)
            before = len(fake_x.fake.seen("UserTweets"))
            again = await s.runner.run(job)
        assert (again.status, again.fetched) == ("ok", 0)
        assert len(fake_x.fake.seen("UserTweets")) - before == 1


async def test_a_crash_mid_run_loses_and_duplicates_nothing(
    fake_x: Any, make_scraper: Any, archive: TweetArchive
) -> None:
    """Cancel a run after its first page is stored; the next run completes the set exactly once
    in the store and in the archive (the crashed run's part is archived under its own key)."""
    hits = fake_x.fake.corpus.search("python")
    expected = {t.id for t in hits} | {t.quoted.id for t in hits if t.quoted}
    async with make_scraper(archive=archive, lease_ttl_s=0.5, batch_size=20) as s:
        stored = s.store.upsert

        async def upsert_then_die(*args: Any, **kwargs: Any) -> Any:
            await stored(*args, **kwargs)
            raise _CrashError("simulated crash after the first page")

        s.store.upsert = upsert_then_die  # type: ignore[method-assign]
        with anyio.fail_after(20), pytest.raises(_CrashError):
            await s.runner.run(_job())
        s.store.upsert = stored  # type: ignore[method-assign]
        partial = await s.store.count()
        assert 0 < partial < len(expected)

        with anyio.fail_after(30):
            outcome = await s.runner.run(_job())
        assert outcome.status == "ok"
        assert await s.store.count() == len(expected)
        runs = await s.store.runs("watch")
        assert [(r.run_id, r.status) for r in runs] == [(2, "ok"), (1, "crashed")]

        archived: list[int] = []
        keys = sorted(await archive.keys("watch"))
        for key in keys:
            archived.extend(int(row["id"]) for row in await archive.read(key))
        assert len(keys) == 2
        assert len(archived) == len(set(archived)) == len(expected)
        assert set(archived) == expected


async def test_archive_key_is_stable_so_a_retry_overwrites(
    make_scraper: Any, fake_x: Any, archive: TweetArchive
) -> None:
    """Re-archiving a run puts identical bytes under the same key: still one object."""
    async with make_scraper(archive=archive) as s:
        with anyio.fail_after(30):
            await s.runner.run(_job())
        run = (await s.store.runs("watch"))[0]
        rows = await s.store.run_tweets("watch", run.run_id)
        key = await archive.put_run("watch", run.run_id, run.started_at, rows)
        assert key == run.archive_key
        assert await archive.keys("watch") == [key]


async def test_two_scrapers_never_run_one_job_at_once(fake_x: Any, make_scraper: Any) -> None:
    """With the lease held by one instance, the other skips the job; both finish cleanly."""
    async with make_scraper(holder="a") as a, make_scraper(holder="b", db="b.db") as b:
        outcomes = []

        async def run(s: Any) -> None:
            outcomes.append(await s.runner.run(_job()))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run, a)
                tg.start_soon(run, b)
        assert sorted(o.status for o in outcomes) == ["ok", "skipped"]


async def test_a_dead_holders_lease_is_taken_over(
    fake_x: Any, make_scraper: Any, redis: Any
) -> None:
    """A lease left by a crashed process expires, and the job runs again."""
    dead = JobLease(redis, "watch", ttl_s=0.2, holder="dead")
    assert await dead.acquire()
    async with make_scraper() as s:
        with anyio.fail_after(10):
            blocked = await s.runner.run(_job())
            # Nobody renews the dead holder's lease: it lapses after its TTL.
            await anyio.sleep(await redis.pttl(dead.key) / 1000 + 0.05)
            taken = await s.runner.run(_job())
    assert (blocked.status, taken.status) == ("skipped", "ok")


async def test_drafts_carry_the_source_tweet_and_flag_refusals(
    fake_x: Any, make_scraper: Any, redis: Any
) -> None:
    """New matching tweets become pending reply drafts on write_queue; replies to authors who
    never mentioned @team are flagged as ones X would refuse."""
    rule = DraftRuleSpec(
        template="Thanks @{{ tweet.author }}!", as_account="team", match_any=("python",),
        max_per_run=1000,
    )  # fmt: skip
    async with make_scraper() as s:
        with anyio.fail_after(30):
            outcome = await s.runner.run(_job(draft=rule))
    raw = await redis.lrange(WRITE_QUEUE, 0, -1)
    assert outcome.drafts == len(raw) > 0
    corpus = fake_x.fake.corpus
    for message in raw:
        request = decode_write_request(message)
        assert request.moderation.value == "pending"
        source = request.source
        assert source is not None
        synth = corpus.by_id(int(source["id"]))
        assert synth is not None
        assert (source["author"], source["text"], source["job"]) == (
            synth.author.screen_name, synth.text, "watch",
        )  # fmt: skip
        assert source["counts"]["likes"] == synth.likes
        assert request.payload["reply"]["in_reply_to_tweet_id"] == str(synth.id)
        mentions_team = any(m.screen_name == "team" for m in synth.mentions)
        assert (source.get("refusal") is not None) is not mentions_team
