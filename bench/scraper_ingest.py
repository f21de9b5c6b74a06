"""Tweets/s for twitstack's parse+store of synthetic GraphQL pages vs twscrape's own parse.

Usage: python bench/scraper_ingest.py [--pages 300] [--per-page 20] [--repeat 3]

Both sides get the same SearchTimeline pages (built by the sandbox's GraphQL fake shapes).
twitstack: parse_page + TweetStore.upsert into a fresh SQLite file (WAL, one transaction per
page). twscrape: models.parse_tweets (no storage at all). Ratio = twitstack / twscrape;
the target is >= 0.8.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from twitstack.sandbox.graphql import SynthCorpus, shapes
from twitstack.scraper.db import open_database
from twitstack.scraper.models import ScrapedTweet
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


async def twitstack_ingest(pages: list[dict[str, Any]], db: Path, batch_size: int) -> int:
    """What JobRunner does per run: parse each page, upsert in batches of `batch_size`."""
    stored = 0
    pending: list[ScrapedTweet] = []
    async with open_database(db) as conn:
        store = TweetStore(conn)
        for i, page in enumerate(pages):
            pending.extend(parse_page(page).tweets)
            if len(pending) >= batch_size or i == len(pages) - 1:
                result = await store.upsert(pending, job="bench", run_id=1, now=time.time())
                stored += len(result.new)
                pending = []
    return stored


def twscrape_only_parse(pages: list[dict[str, Any]]) -> int:
    return sum(len(twscrape_parse(page)) for page in pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500, help="scraper.upsert_batch_size")
    args = parser.parse_args()
    pages = build_pages(args.pages, args.per_page)
    best_ours = best_theirs = float("inf")
    ours_n = theirs_n = 0
    for attempt in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            ours_n = anyio.run(
                twitstack_ingest, pages, Path(tmp) / f"bench-{attempt}.db", args.batch_size
            )
            best_ours = min(best_ours, time.perf_counter() - start)
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


if __name__ == "__main__":
    main()
