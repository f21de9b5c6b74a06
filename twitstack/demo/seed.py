"""What the demo starts with: an admin, two scraping accounts, requests awaiting review, and
scrape jobs whose drafts show both sides: replies X accepts, and one it would refuse."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from twitstack.core.config import Settings
from twitstack.moderation.db import open_database
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.roles import Role
from twitstack.moderation.users import UserStore
from twitstack.sandbox.graphql import SynthCorpus
from twitstack.sandbox.xapi.store import ContentStore
from twitstack.scraper.twscrape_adapter import TwscrapeAccounts
from twitstack.writes.keys import WRITE_QUEUE
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.wire import encode_write_request

# Pushed exactly as any producer would: pending, waiting for a moderator.
SAMPLE_REQUESTS = (
    WriteRequest(
        action=WriteAction.TWEET,
        payload={"text": "Shipping twitstack today: every post reviewed by a human first."},
        author="demo:release-bot",
    ),
    WriteRequest(
        action=WriteAction.TWEET,
        payload={"text": "Release notes are up: https://example.com/twitstack/0.1 $TWIT"},
        author="demo:release-bot",
    ),
    WriteRequest(
        action=WriteAction.DM,
        payload={"recipient_id": "1001", "text": "Thanks for the bug report, a fix is on its way."},
        author="demo:support",
    ),
)


def scrape_jobs(interval_s: float) -> list[dict[str, Any]]:
    """Two jobs: replies to people who mentioned @twitstack_demo (X accepts those), and one
    reply to a stranger, which X refuses; the queue labels it "X would refuse"."""
    reply = {"action": "reply", "as_account": "twitstack_demo"}
    return [
        {
            "name": "mentions",
            "kind": "search",
            "target": "@twitstack_demo",
            "interval_s": interval_s,
            "limit": 40,
            "draft": {
                **reply,
                # The tweet's id keeps two answers to one author from being duplicates,
                # which X refuses.
                "template": "Thanks for the mention, @{{ tweet.author }}! (re {{ tweet.id }})",
                "max_per_run": 3,
            },
        },
        {
            "name": "python-watch",
            "kind": "search",
            "target": "python",
            "interval_s": interval_s,
            "limit": 40,
            "draft": {
                **reply,
                "template": "Thanks @{{ tweet.author }}, we read this one!",
                "match_any": ["release", "bug"],
                "max_per_run": 1,
            },
        },
    ]


def share_world(corpus: SynthCorpus, content: ContentStore) -> None:
    """Make the GraphQL fake's tweets known to the fake X API, so drafts can answer them."""
    for tweet in corpus.tweets:
        content.import_post(
            str(tweet.id), str(tweet.author.id), tweet.text, tweet.created_at.timestamp(),
            quote_of=str(tweet.quoted.id) if tweet.quoted is not None else None,
        )  # fmt: skip


async def seed_admin(settings: Settings, username: str, password: str) -> None:
    """Create the demo's admin in the moderation database (migrated on open)."""
    path = settings.state_dir / settings.moderation.db_filename
    async with open_database(path) as db:
        users = UserStore(db, PasswordService(), time.time)
        existing = await users.by_name(username)
        if existing is None:
            await users.create(username, password, Role.ADMIN)
        else:  # a kept data_dir from an earlier demo: a fresh one-time password
            await users.set_password(existing.id, password)


async def seed_scraper_accounts(settings: Settings) -> None:
    """Two cookie accounts for twscrape; the GraphQL fake accepts any cookies."""
    path = settings.scraper.accounts_db
    if not path.is_absolute():
        path = (settings.state_dir / path).absolute()
    accounts = TwscrapeAccounts(path)
    await accounts.upsert_cookies("demo_scraper_1", "auth_token=demo1; ct0=demo1csrf")
    await accounts.upsert_cookies("demo_scraper_2", "auth_token=demo2; ct0=demo2csrf")


async def seed_requests(redis: Redis, requests: tuple[WriteRequest, ...]) -> None:
    """RPUSH the sample requests onto write_queue in the wire format."""
    await redis.rpush(WRITE_QUEUE, *(encode_write_request(request) for request in requests))
