"""The scraper's own types: scraped tweets, pages, account signals and run outcomes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from twitstack.core.errors import TwitstackError


class ScraperError(TwitstackError):
    """Root of the scraper's errors."""


class NoAccountAvailableError(ScraperError):
    """No scraping account was free within the wait timeout (or none is active)."""


class GraphQLDriftError(ScraperError):
    """X rejected twscrape's GraphQL features: twscrape must be upgraded; retrying cannot help."""


class AccountError(ScraperError):
    """An account could not be added, found or changed."""


@dataclass(frozen=True, slots=True)
class ScrapedTweet:
    """One tweet as twitstack stores it; `raw` is X's JSON for it (JSON-serialisable)."""

    id: int
    author_id: int
    author_username: str
    text: str
    created_at: datetime
    lang: str
    reply_count: int
    retweet_count: int
    like_count: int
    quote_count: int
    view_count: int | None
    conversation_id: int
    in_reply_to_id: int | None
    in_reply_to_user_id: int | None
    quoted_id: int | None
    quoted_author_username: str | None
    mentioned_usernames: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    retweeted_id: int | None = None
    # The original of a retweet, parsed: drafts answer it, not the retweet.
    retweeted: ScrapedTweet | None = field(default=None, repr=False, compare=False)
    # The quoted tweet, when X sent it along: stored as a tweet of its own.
    quoted: ScrapedTweet | None = field(default=None, repr=False, compare=False)

    @property
    def original(self) -> ScrapedTweet:
        """The tweet a reply or quote should point at: the original of a retweet, else itself."""
        return self.retweeted or self


@dataclass(frozen=True, slots=True)
class UnreadableItem:
    """A timeline entry that looked like a tweet but could not be parsed (it is quarantined)."""

    ref: str  # the tweet's rest_id, or the entry id when there is none
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Page:
    """One GraphQL timeline page: its tweets in order and the cursor to the next page."""

    tweets: list[ScrapedTweet]
    cursor: str | None
    # Quoted tweets that are not entries of the page, stored as tweets of their own (twscrape
    # yields them too); kept apart so watermarks and limits count timeline entries only.
    embedded: list[ScrapedTweet] = field(default_factory=list)
    # Entries the parser could not read: one bad item must not fail the page (or the job).
    unreadable: tuple[UnreadableItem, ...] = ()


@dataclass(frozen=True, slots=True)
class TweetLookup:
    """One tweet asked for by id: found, gone (deleted or never existed) or no answer."""

    tweet: ScrapedTweet | None
    gone: bool = False


class Signal(enum.StrEnum):
    """What one GraphQL response says about the account that made it."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"  # 429 / remaining 0: twscrape locks it until the reset
    SUSPENDED = "suspended"  # code 64: twscrape keeps using it and returns nothing
    AUTH_FAILED = "auth_failed"  # codes 32/326/88-ban, bare 403: twscrape marks it inactive
    BLOCKED = "blocked"  # an HTML error page (Cloudflare/503): twscrape yields nothing
    SERVER_ERROR = "server_error"  # other non-2xx: twscrape locks it 15 minutes
    API_ERROR = "api_error"  # errors without data: twscrape yields nothing
    FEATURES_OUTDATED = "features_outdated"  # code 336: twscrape must be upgraded
    TRANSPORT = "transport"  # timeouts / proxy errors (seen through twscrape's log)
    # X changed, not the account (twscrape swallows all three and yields nothing):
    NOT_FOUND = "not_found"  # 404, usually empty: stale query ids or transaction ids
    BAD_REQUEST = "bad_request"  # another 4xx that says nothing about the account
    TRANSACTION_ID = "transaction_id"  # the x-client-transaction-id generator failed


# Signals meaning twscrape no longer speaks X's GraphQL: counted in scraper_graphql_drift_total
# by kind (with "canary_empty", a canary query that found nothing).
DRIFT_SIGNALS = frozenset(
    {Signal.FEATURES_OUTDATED, Signal.NOT_FOUND, Signal.BAD_REQUEST, Signal.TRANSACTION_ID}
)
DRIFT_KINDS: tuple[str, ...] = (*sorted(s.value for s in DRIFT_SIGNALS), "canary_empty")
# Every `kind` of scraper_run_errors_total, declared at 0 for each job from the start.
RUN_ERROR_KINDS: tuple[str, ...] = (
    "no_account", "blocked", "suspect_empty", "graphql_drift",
    *(f"graphql_{s.value}" for s in sorted(DRIFT_SIGNALS - {Signal.FEATURES_OUTDATED})),
    "drafts_push", "archive",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ResponseEvent:
    """One response twscrape received, as the scraper's health tracking sees it."""

    username: str
    queue: str
    status: int
    signal: Signal
    error_codes: tuple[int, ...] = ()
    at: float = 0.0
    proxy: bool = False
    empty_body: bool = False


class AccountState(enum.StrEnum):
    """An account's health as shown by `accounts list` and the metrics."""

    ACTIVE = "active"
    LOCKED = "locked"  # active but every queue it used is rate-limited right now
    SUSPECT = "suspect"  # active, with recent errors; probed soon
    QUARANTINED = "quarantined"  # deactivated by the scraper (suspended/blocked); re-probed
    INACTIVE = "inactive"  # deactivated by twscrape (auth failed / banned)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """One scraping account's state (cookies never leave the adapter)."""

    username: str
    active: bool
    error_msg: str | None
    locks: Mapping[str, datetime]
    last_used: datetime | None
    total_requests: int
    proxy: str | None

    @property
    def quarantined(self) -> bool:
        return not self.active and (self.error_msg or "").startswith(QUARANTINE_PREFIX)


QUARANTINE_PREFIX = "quarantined:"
