"""Tweets/s for twitstack's parse+store of synthetic GraphQL pages vs twscrape's own parse.

Usage: python bench/scraper_ingest.py [--pages 300] [--per-page 20] [--repeat 3] [--drafts]

Both sides get the same SearchTimeline pages (built by the sandbox's GraphQL fake shapes).
twitstack: parse_page + TweetStore.upsert into a fresh SQLite file (WAL, one transaction per
page). twscrape: models.parse_tweets (no storage at all). Ratio = twitstack / twscrape;
the target is >= 0.8. `--drafts` adds a third line: the same ingest with a draft rule whose
drafts go to the outbox inside each batch's transaction, as a job with a rule does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from twitstack.core.sections.scraper import DraftRuleSpec
from twitstack.sandbox.graphql import SynthCorpus, shapes
from twitstack.scraper.db import open_database
from twitstack.scraper.drafts import build_drafts, outbox_messages
from twitstack.scraper.models import ScrapedTweet
from twitstack.scraper.outbox import OutboxMessage
from twitstack.scraper.parse import parse_page
from twitstack.scraper.store import TweetStore
from twitstack.scraper.twscrape_adapter import twscrape_parse


def build_pages(pages: int, per_page: int) -> list[dict[str, Any]]:
    corpus = SynthCorpus.generate(seed=42, users=200, tweets=pages * per_page)
    tweets = corpus.tweets[::-1]
    out = []
    for i in range(pages):
        chunk = tweets[i * per_page : (i + 1) * per_page]
        entries = [shapes.tweet_entry(t) for t in chunk]
        entries.append(shapes.cursor_entry(f"o{(i + 1) * per_page}"))
        out.append(shapes.search_page(entries))
    return out


_RULE = DraftRuleSpec(
    template="Thanks @{{ tweet.author }}!", as_account="team", match_any=("python",),
    max_per_run=1000,
)  # fmt: skip


def _drafts(new: list[ScrapedTweet]) -> list[OutboxMessage]:
    drafts = build_drafts(_RULE, new, job="bench", now=datetime.now(UTC))
    return outbox_messages(drafts, job="bench", run_id=1)


async def twitstack_ingest(
    pages: list[dict[str, Any]], db: Path, batch_size: int, with_drafts: bool = False
) -> tuple[int, int]:
    """What JobRunner does per run: parse each page, upsert in batches of `batch_size`.

    Returns (tweets stored, drafts committed to the outbox)."""
    stored = drafted = 0
    pending: list[ScrapedTweet] = []
    drafts = _drafts if with_drafts else None
    async with open_database(db) as conn:
        store = TweetStore(conn)
        for i, page in enumerate(pages):
            pending.extend(parse_page(page).tweets)
            if len(pending) >= batch_size or i == len(pages) - 1:
                result = await store.upsert(
                    pending, job="bench", run_id=1, now=time.time(), drafts=drafts
                )
                stored += len(result.new)
                drafted += result.drafts
                pending = []
    return stored, drafted


def twscrape_only_parse(pages: list[dict[str, Any]]) -> int:
    return sum(len(twscrape_parse(page)) for page in pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500, help="scraper.upsert_batch_size")
    parser.add_argument("--drafts", action="store_true", help="also time ingest with a draft rule")
    args = parser.parse_args()
    pages = build_pages(args.pages, args.per_page)
    best_ours = best_theirs = best_drafted = float("inf")
    ours_n = theirs_n = drafted = 0
    for attempt in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            ours_n, _ = anyio.run(
                twitstack_ingest, pages, Path(tmp) / f"bench-{attempt}.db", args.batch_size
            )
            best_ours = min(best_ours, time.perf_counter() - start)
        if args.drafts:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                _, drafted = anyio.run(
                    twitstack_ingest, pages, Path(tmp) / "d.db", args.batch_size, True
                )
                best_drafted = min(best_drafted, time.perf_counter() - start)
        start = time.perf_counter()
        theirs_n = twscrape_only_parse(pages)
        best_theirs = min(best_theirs, time.perf_counter() - start)
    ours_rate, theirs_rate = ours_n / best_ours, theirs_n / best_theirs
    print(
        f"pages={args.pages} per_page={args.per_page} batch={args.batch_size} "
        f"repeat={args.repeat} (best of)"
    )
    for label, n, secs in (
        ("twitstack parse+store", ours_n, best_ours),
        ("twscrape parse only", theirs_n, best_theirs),
    ):
        print(f"{label:<22}: {n:>7} tweets in {secs:6.3f}s = {n / secs:>8.0f}/s")
    print(f"ratio (twitstack / twscrape) = {ours_rate / theirs_rate:.2f}  (target >= 0.80)")
    if args.drafts:
        print(
            f"{'+ drafts via outbox':<22}: {ours_n:>7} tweets in {best_drafted:6.3f}s = "
            f"{ours_n / best_drafted:>8.0f}/s  ({drafted} drafts in the outbox)"
        )


if __name__ == "__main__":
    main()
