"""TwscrapeClient: pages and tweets through twscrape's real code path, parsed by twitstack."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from pathlib import Path
from typing import Any

import twscrape

from twitstack.core.logging import get_logger
from twitstack.scraper.models import (
    AccountError,
    GraphQLDriftError,
    NoAccountAvailableError,
    Page,
    ScrapedTweet,
    TweetLookup,
)
from twitstack.scraper.parse import gone_from, mentions, parse_page
from twitstack.scraper.twscrape_adapter.observe import ObservedPool, ResponseObserver

log = get_logger("twitstack.scraper.twscrape")

# The twscrape queues (its GraphQL operation names) each job kind spends. twscrape locks an
# account per queue when X rate-limits it there; scraper_account_next_unlock_timestamp_seconds
# is per queue, so these are its label values known before the first lock.
QUEUES_BY_JOB_KIND: dict[str, tuple[str, ...]] = {
    "tweets": ("TweetDetail",),
    "search": ("SearchTimeline",),
    "user_tweets": ("UserByScreenName", "UserTweets"),
    "replies": ("TweetDetail",),
    "list": ("ListLatestTweetsTimeline",),
}


class TwscrapeClient:
    """Fetches pages through twscrape's real code path, parsing them with twitstack's parser."""

    def __init__(
        self,
        accounts_db: Path,
        *,
        wait_timeout_s: float,
        wait_interval_s: float = 1.0,
        observer: ResponseObserver | None = None,
    ) -> None:
        if not accounts_db.is_absolute():
            raise AccountError(f"accounts_db must be an absolute path, got {accounts_db}")
        self.accounts_db = accounts_db
        self._pool = ObservedPool(
            str(accounts_db),
            raise_when_no_account=True,
            wait_timeout=wait_timeout_s,
            wait_interval=wait_interval_s,
        )
        self._pool.observer = observer

    def _api(self, proxy: str | None) -> Any:
        return twscrape.API(self._pool, proxy=proxy, raise_when_no_account=True)

    async def _pages(self, gen: Any, cursor_type: str = "Bottom") -> AsyncGenerator[Page, None]:
        try:
            async with aclosing(gen) as pages:
                async for rep in pages:
                    yield parse_page(rep.json(), cursor_type)
        except twscrape.NoAccountError as exc:
            raise NoAccountAvailableError(str(exc)) from None
        except twscrape.GqlFeaturesOutdatedError:
            raise GraphQLDriftError(
                f"X rejected twscrape {twscrape_version()}'s GraphQL features: upgrade twscrape"
            ) from None

    def search(
        self, query: str, *, limit: int, proxy: str | None = None
    ) -> AsyncGenerator[Page, None]:
        return self._pages(self._api(proxy).search_raw(query, limit=limit))

    def user_tweets(
        self, user_id: int, *, limit: int, proxy: str | None = None
    ) -> AsyncGenerator[Page, None]:
        return self._pages(self._api(proxy).user_tweets_raw(user_id, limit=limit))

    def list_tweets(
        self, list_id: int, *, limit: int, proxy: str | None = None
    ) -> AsyncGenerator[Page, None]:
        return self._pages(self._api(proxy).list_timeline_raw(list_id, limit=limit))

    def replies(
        self, tweet_id: int, *, limit: int, proxy: str | None = None
    ) -> AsyncGenerator[Page, None]:
        gen = self._api(proxy).tweet_replies_raw(tweet_id, limit=limit)
        return self._pages(gen, cursor_type="ShowMoreThreads")

    async def tweet(self, tweet_id: int, *, proxy: str | None = None) -> ScrapedTweet | None:
        """One tweet by id (None if X has no such tweet or nothing came back)."""
        return (await self.lookup(tweet_id, proxy=proxy)).tweet

    async def lookup(self, tweet_id: int, *, proxy: str | None = None) -> TweetLookup:
        """One tweet by id, telling a tweet X says is gone from an answer that never came."""
        rep = await self._one(self._api(proxy).tweet_details_raw(tweet_id))
        if rep is None:
            return TweetLookup(None)
        body = rep.json()
        page = parse_page(body)
        found = next((t for t in page.tweets if t.id == tweet_id), None)
        return TweetLookup(found, gone=found is None and gone_from(body, tweet_id))

    async def tweet_json(
        self, tweet_id: int, *, proxy: str | None = None
    ) -> Mapping[str, Any] | None:
        """X's raw JSON for one tweet (the `tweet_results.result` object)."""
        tweet = await self.tweet(tweet_id, proxy=proxy)
        return tweet.raw if tweet is not None else None

    async def user_id(self, screen_name: str, *, proxy: str | None = None) -> int | None:
        rep = await self._one(self._api(proxy).user_by_login_raw(screen_name.lstrip("@")))
        if rep is None:
            return None
        result = ((rep.json().get("data") or {}).get("user") or {}).get("result") or {}
        rest_id = result.get("rest_id")
        return int(rest_id) if rest_id is not None else None

    async def _one(self, call: Any) -> Any:
        try:
            return await call
        except twscrape.NoAccountError as exc:
            raise NoAccountAvailableError(str(exc)) from None
        except twscrape.GqlFeaturesOutdatedError:
            raise GraphQLDriftError(
                f"X rejected twscrape {twscrape_version()}'s GraphQL features: upgrade twscrape"
            ) from None


def tweet_from_twscrape(tweet: Any) -> ScrapedTweet:
    """Map a twscrape `Tweet` model onto ScrapedTweet (used to cross-check the fast parser)."""
    quoted = tweet.quotedTweet
    retweeted = tweet.retweetedTweet
    return ScrapedTweet(
        id=int(tweet.id),
        author_id=int(tweet.user.id),
        author_username=str(tweet.user.username),
        text=str(tweet.rawContent),
        created_at=tweet.date,
        lang=str(tweet.lang or ""),
        reply_count=int(tweet.replyCount),
        retweet_count=int(tweet.retweetCount),
        like_count=int(tweet.likeCount),
        quote_count=int(tweet.quoteCount),
        view_count=tweet.viewCount,
        conversation_id=int(tweet.conversationId),
        in_reply_to_id=tweet.inReplyToTweetId,
        in_reply_to_user_id=int(tweet.inReplyToUser.id) if tweet.inReplyToUser else None,
        quoted_id=int(quoted.id) if quoted else None,
        quoted_author_username=str(quoted.user.username) if quoted else None,
        mentioned_usernames=mentions(
            {"user_mentions": [{"screen_name": u.username} for u in tweet.mentionedUsers]},
            str(tweet.rawContent),
        ),
        raw={},
        retweeted_id=int(retweeted.id) if retweeted else None,
    )


def twscrape_parse(response: Mapping[str, Any]) -> list[ScrapedTweet]:
    """twscrape's own parse of a page (quoted tweets flattened in, as twscrape yields them)."""
    return [tweet_from_twscrape(t) for t in twscrape.models.parse_tweets(response)]


def twscrape_version() -> str:
    from importlib.metadata import version

    return version("twscrape")
