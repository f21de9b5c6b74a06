"""twscrape behind one door: pool, API calls, logging, telemetry and response observation.

This is the only module importing twscrape. Everything else speaks ScrapedTweet, Page,
ResponseEvent and AccountInfo. twscrape is asyncio-only, so anyio must run on asyncio.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio

# Telemetry is read on every capture(); set before anything can issue a request.
os.environ["TWS_TELEMETRY"] = "0"

import twscrape
import twscrape.api as tws_api
from twscrape.logger import logger as tws_logger
from twscrape.queue_client import QueueClient, XClIdGenStore
from twscrape.xclid import XClIdError, XClIdGen, XClIdParseError

from twitstack.core.logging import get_logger
from twitstack.scraper.models import (
    AccountError,
    AccountInfo,
    GraphQLDriftError,
    NoAccountAvailableError,
    Page,
    ResponseEvent,
    ScrapedTweet,
    Signal,
    TweetLookup,
)
from twitstack.scraper.parse import gone_from, mentions, parse_page, parse_tweet_result

log = get_logger("twitstack.scraper.twscrape")
ResponseObserver = Callable[[ResponseEvent], None]

_DEFAULT_GQL_URL = tws_api.GQL_URL
_BAN_CODES = frozenset({32, 326})
_ACCOUNT_STATUSES = frozenset({401, 403, 429})  # about the account, judged above
_TRANSPORT_LOG = re.compile(r"username=(?P<user>[^;]+); queue=(?P<queue>[^;]+);.*proxy=(?P<p>\w+)")
_state: dict[str, Any] = {"sink": None, "observer": None, "xclid_broken": False}
_REAL_XCLID_GET = XClIdGenStore.__dict__["get"].__func__
_SANDBOX_XCLID = XClIdGen(vk_bytes=list(range(48)), anim_key="00")


class _ObservedQueueClient(QueueClient):  # type: ignore[misc]
    """twscrape's QueueClient, reporting every response (with its account) before judging it."""

    async def _check_rep(self, rep: Any) -> None:
        observer = getattr(self.pool, "observer", None)
        if observer is not None:
            observer(classify_response(rep, self.queue))
        await super()._check_rep(rep)

    async def _get_ctx(self) -> Any:
        ctx = await super()._get_ctx()
        observer = getattr(self.pool, "observer", None)
        if ctx is not None and observer is not None and not isinstance(ctx.clt, _Observed404s):
            ctx.clt = _Observed404s(ctx.clt, observer, self.queue, ctx.acc.username)
        return ctx


class _Observed404s:
    """Wraps an account's HTTP client to see the 404s twscrape consumes before _check_rep.

    twscrape answers a 404 by regenerating the transaction id and retrying three times, then
    yields nothing as if all were well: the way X's changes (stale query ids, a new
    transaction-id scheme) show, and the only point where they can be seen.
    """

    def __init__(self, inner: Any, observer: ResponseObserver, queue: str, username: str):
        self._inner, self._observer = inner, observer
        self._queue, self._username = queue, username

    async def request(self, method: str, url: str, **kwargs: Any) -> Any:
        rep = await self._inner.request(method, url, **kwargs)
        if rep.status_code == 404:
            empty = not rep.content.strip()
            self._observer(
                ResponseEvent(
                    self._username, self._queue, 404, Signal.NOT_FOUND, at=time.time(),
                    empty_body=empty,
                )
            )  # fmt: skip
            log.warning(
                "scraper.graphql_not_found", account=self._username, queue=self._queue,
                empty_body=empty,
            )  # fmt: skip
        return rep

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _ObservedPool(twscrape.AccountsPool):  # type: ignore[misc]
    observer: ResponseObserver | None = None


def classify_response(rep: Any, queue: str) -> ResponseEvent:
    """Turn one twscrape Response into a ResponseEvent (same rules as twscrape's _check_rep)."""
    status = int(rep.status_code)
    username = str(getattr(rep, "__username", "") or "")
    headers = rep.headers
    html = "text/html" in headers.get("content-type", "")
    codes: tuple[int, ...] = ()
    has_data = False
    if not html:
        try:
            body = rep.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            errors = body.get("errors") or []
            codes = tuple(int(e.get("code", -1)) for e in errors if isinstance(e, Mapping))
            data = body.get("data")
            has_data = isinstance(data, Mapping) and any(v is not None for v in data.values())
    remaining = int(headers.get("x-rate-limit-remaining", -1))
    reset = int(headers.get("x-rate-limit-reset", -1))
    if html and status >= 400:
        signal = Signal.BLOCKED
    elif 336 in codes:
        signal = Signal.FEATURES_OUTDATED
    elif remaining == 0 and reset > 0:
        signal = Signal.RATE_LIMITED
    elif 64 in codes:
        signal = Signal.SUSPENDED
    elif _BAN_CODES & set(codes) or (88 in codes) or (status == 403 and not codes):
        signal = Signal.AUTH_FAILED
    elif status == 404:
        signal = Signal.NOT_FOUND
    elif 400 <= status < 500 and status not in _ACCOUNT_STATUSES:
        signal = Signal.BAD_REQUEST
    elif codes and not has_data and 144 not in codes:
        signal = Signal.API_ERROR
    elif status >= 400 and not codes:
        signal = Signal.SERVER_ERROR
    else:
        signal = Signal.OK
    empty = not bytes(rep.content or b"").strip()
    return ResponseEvent(username, queue, status, signal, codes, at=time.time(), empty_body=empty)


def _loguru_sink(message: Any) -> None:
    record = message.record
    text = str(record["message"])
    level = record["level"].name
    method = {"ERROR": log.error, "CRITICAL": log.error, "WARNING": log.warning}.get(
        level, log.debug
    )
    method("twscrape.logged", level=level.lower(), message=text)
    # Transport/proxy failures never reach _check_rep; twscrape only logs them.
    if "cooling account" in text and (m := _TRANSPORT_LOG.search(text)):
        observer = _state["observer"]
        if observer is not None:
            observer(
                ResponseEvent(
                    m["user"].strip(),
                    m["queue"].strip(),
                    0,
                    Signal.TRANSPORT,
                    at=time.time(),
                    proxy=m["p"] == "True",
                )
            )


def configure_twscrape(*, graphql_url: str | None = None) -> None:
    """Route twscrape's loguru output into structlog, install response observation and
    (for the sandbox only) point it at a GraphQL fake with a stubbed transaction-id generator."""
    os.environ["TWS_TELEMETRY"] = "0"
    if _state["sink"] is None:
        tws_logger.remove()
        _state["sink"] = tws_logger.add(
            _loguru_sink, level="INFO", filter=lambda r: r["name"].startswith("twscrape")
        )
    tws_api.QueueClient = _ObservedQueueClient
    tws_api.GQL_URL = f"{graphql_url}/i/api/graphql" if graphql_url else _DEFAULT_GQL_URL
    # XClIdGen.create() fetches x.com pages and JS bundles; the fake needs no real ids.
    source = _sandbox_transaction_ids if graphql_url else _REAL_XCLID_GET
    XClIdGenStore.get = classmethod(_observed_transaction_ids(source))


def _observed_transaction_ids(source: Callable[..., Any]) -> Callable[..., Any]:
    """XClIdGenStore.get, reporting failures: twscrape logs them and yields nothing."""

    async def get(
        cls: Any, username: str, proxy: Any = None, cookies: Any = None, fresh: bool = False
    ) -> XClIdGen:
        try:
            return await source(cls, username, proxy, cookies, fresh)
        except XClIdError as exc:
            log.warning("scraper.transaction_id_failed", account=username, error=str(exc))
            observer = _state["observer"]
            if observer is not None:
                observer(ResponseEvent(username, "", 0, Signal.TRANSACTION_ID, at=time.time()))
            raise

    return get


async def _sandbox_transaction_ids(
    cls: Any, username: str, proxy: Any = None, cookies: Any = None, fresh: bool = False
) -> XClIdGen:
    if _state["xclid_broken"]:
        raise XClIdParseError("X web scripts not found (sandbox: transaction ids broken)")
    return _SANDBOX_XCLID


def break_sandbox_transaction_ids(broken: bool) -> None:
    """Make the sandbox's transaction-id generator fail the way twscrape's does when X changes
    its web app (twscrape #312): every request is given up before it is sent."""
    _state["xclid_broken"] = broken


def set_transport_observer(observer: ResponseObserver | None) -> None:
    """Where transport errors seen in twscrape's log are reported (one per process)."""
    _state["observer"] = observer


def parse_cookies(value: str) -> dict[str, str]:
    """Cookies in any format twscrape accepts (header, JSON, base64, browser export)."""
    try:
        cookies: dict[str, str] = twscrape.utils.parse_cookies(value)
    except ValueError as exc:
        raise AccountError(f"cookies are not in a format twscrape understands: {exc}") from None
    return cookies


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
        self._pool = _ObservedPool(
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


class TwscrapeAccounts:
    """The accounts database: add/rotate cookies, list, (de)activate, proxies, probes."""

    def __init__(self, accounts_db: Path) -> None:
        if not accounts_db.is_absolute():
            raise AccountError(f"accounts_db must be an absolute path, got {accounts_db}")
        self.accounts_db = accounts_db
        self._pool = twscrape.AccountsPool(str(accounts_db))

    async def upsert_cookies(
        self, username: str, cookies: str, *, proxy: str | None = None
    ) -> None:
        """Add a cookie account or rotate its cookies; stats and locks are kept."""
        parse_cookies(cookies)  # one clear error for unreadable input
        try:
            await self._pool.add_account_cookies(username, cookies)
        except ValueError as exc:
            raise AccountError(f"{username}: {exc}") from None
        if proxy is not None:
            await self.set_proxy(username, proxy)

    async def remove(self, usernames: list[str]) -> None:
        await self._pool.delete_accounts(usernames)

    async def list_accounts(self) -> list[AccountInfo]:
        return [_info(acc) for acc in await self._pool.get_all()]

    async def get(self, username: str) -> AccountInfo | None:
        acc = await self._pool.get_account(username)
        return _info(acc) if acc is not None else None

    async def reset_locks(self) -> None:
        """Clear every queue lock (left behind by crashes and cancelled requests)."""
        await self._pool.reset_locks()

    async def deactivate(self, username: str, reason: str) -> None:
        await self._pool.mark_inactive(username, reason)

    async def reactivate(self, username: str) -> None:
        acc = await self._account(username)
        acc.active, acc.error_msg = True, None
        await self._pool.save(acc)

    async def set_proxy(self, username: str, proxy: str | None) -> None:
        acc = await self._account(username)
        acc.proxy = proxy
        await self._pool.save(acc)

    async def probe(
        self, username: str, screen_name: str, *, scratch_dir: Path, proxy: str | None = None
    ) -> list[ResponseEvent]:
        """Look up `screen_name` with this one account and return what the responses said.

        twscrape cannot pin a call to an account, so the probe runs on a scratch pool that
        holds a copy of this account only; the real pool is untouched.
        """
        acc = await self._account(username)
        acc.active, acc.error_msg, acc.locks = True, None, {}
        await anyio.Path(scratch_dir).mkdir(parents=True, exist_ok=True)
        db = anyio.Path(scratch_dir) / f"probe-{re.sub(r'[^A-Za-z0-9_]', '_', username)}.db"
        await db.unlink(missing_ok=True)
        events: list[ResponseEvent] = []
        pool = _ObservedPool(str(db), raise_when_no_account=True, wait_timeout=0)
        pool.observer = events.append
        try:
            await pool.save(acc)
            api = twscrape.API(pool, proxy=proxy, raise_when_no_account=True)
            try:
                await api.user_by_login_raw(screen_name)
            except twscrape.NoAccountError:
                pass  # the probe's only account was locked or deactivated: events say why
            except twscrape.GqlFeaturesOutdatedError:
                events.append(
                    ResponseEvent(
                        username,
                        "UserByScreenName",
                        400,
                        Signal.FEATURES_OUTDATED,
                        (336,),
                        time.time(),
                    )
                )
        finally:
            await db.unlink(missing_ok=True)
        return events

    async def _account(self, username: str) -> Any:
        acc = await self._pool.get_account(username)
        if acc is None:
            raise AccountError(f"no scraping account named {username!r}")
        return acc


def _info(acc: Any) -> AccountInfo:
    return AccountInfo(
        username=acc.username,
        active=bool(acc.active),
        error_msg=acc.error_msg,
        locks=dict(acc.locks),
        last_used=acc.last_used,
        total_requests=sum(acc.stats.values()),
        proxy=acc.proxy,
    )


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


__all__ = [
    "ResponseObserver",
    "TwscrapeAccounts",
    "TwscrapeClient",
    "break_sandbox_transaction_ids",
    "classify_response",
    "configure_twscrape",
    "parse_cookies",
    "parse_tweet_result",
    "set_transport_observer",
    "tweet_from_twscrape",
    "twscrape_parse",
    "twscrape_version",
]
