"""Handlers of `scrape run` and `tweets search|export` (loaded only when one of them runs)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

import anyio

from twitstack.scraper.db import open_database
from twitstack.scraper.paths import store_db_path
from twitstack.scraper.store import TweetStore

if TYPE_CHECKING:
    from twitstack.core.config import Settings


def scrape_run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one job now through the same runner the service uses (lease, outbox, archive)."""
    # The runner pulls in twscrape and aioboto3: only this command needs them.
    from twitstack.core.metrics import new_registry
    from twitstack.core.redis import open_redis
    from twitstack.scraper.jobs import find_job
    from twitstack.scraper.metrics import ScraperMetrics
    from twitstack.scraper.paths import ensure_state_dir
    from twitstack.scraper.service import open_scraper

    job_name: str = args.job

    async def main() -> int:
        metrics = ScraperMetrics(new_registry())
        data_dir = ensure_state_dir(settings)
        async with (
            open_redis(settings.redis_url) as redis,
            open_scraper(settings, redis, data_dir, metrics, holder="cli") as parts,
        ):
            outcome = await parts.runner.run(find_job(parts.jobs, job_name))
        print(
            f"{outcome.job}: {outcome.status} run={outcome.run_id} fetched={outcome.fetched} "
            f"new={outcome.new} duplicates={outcome.duplicates} drafts={outcome.drafts}"
            + (f" gone={outcome.gone}" if outcome.gone else "")
            + (f" error={outcome.error_kind}" if outcome.error_kind else "")
        )
        return 0 if outcome.status == "ok" else 1

    return anyio.run(main)


def tweets_search(args: argparse.Namespace, settings: Settings) -> int:
    """Print stored tweets matching the filters, as a table or JSON lines."""

    async def main() -> int:
        async with open_database(store_db_path(settings)) as conn:
            rows = await TweetStore(conn).search(
                text=args.text, author=args.author, job=args.job, since=args.since,
                limit=args.limit,
            )  # fmt: skip
        for row in rows:
            if args.format == "jsonl":
                print(json.dumps(row, ensure_ascii=False))
            else:
                text = " ".join(str(row["text"]).split())[:80]
                print(f"{row['id']}  @{row['author_username']:<16} {row['like_count']:>6}♥  {text}")
        return 0

    return anyio.run(main)


def tweets_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write every stored tweet (of one job) as JSON lines to a file or stdout."""

    async def main() -> int:
        out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
        count = 0
        try:
            async with open_database(store_db_path(settings)) as conn:
                async for row in TweetStore(conn).export(job=args.job, with_raw=not args.no_raw):
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    count += 1
        finally:
            if out is not sys.stdout:
                out.close()
        if args.output:
            print(f"exported {count} tweets to {args.output}")
        return 0

    return anyio.run(main)
