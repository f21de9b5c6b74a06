"""Parse X's GraphQL timeline pages into ScrapedTweets, walking only the entries (fast path)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from twitstack.scraper.models import Page, ScrapedTweet, UnreadableItem

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_SKIPPED_ENTRY_PREFIXES = ("cursor-", "messageprompt-", "module-", "who-to-follow-")
_TWITTER_EPOCH_MS = 1288834974657
# A screen name after "@" that is not part of a word or an e-mail address.
_MENTION = re.compile(r"(?<![A-Za-z0-9_@])@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_])")


def parse_x_date(value: str) -> datetime:
    """X's `created_at` ("Wed Jul 08 21:59:10 +0000 2026"), always UTC in practice."""
    try:
        _, mon, day, hms, offset, year = value.split(" ")
        if offset == "+0000":
            hh, mm, ss = hms.split(":")
            return datetime(
                int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(ss), tzinfo=UTC
            )
    except (ValueError, KeyError):
        pass
    return datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y").astimezone(UTC)


def snowflake_time(tweet_id: int) -> datetime:
    """When a tweet id was minted (X ids embed milliseconds since X's epoch)."""
    return datetime.fromtimestamp(((tweet_id >> 22) + _TWITTER_EPOCH_MS) / 1000, tz=UTC)


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _unwrap(result: Any) -> Mapping[str, Any] | None:
    if not isinstance(result, Mapping):
        return None
    if result.get("__typename") == "TweetWithVisibilityResults":
        result = result.get("tweet")
        if not isinstance(result, Mapping):
            return None
    return result if result.get("__typename", "Tweet") == "Tweet" else None


def _screen_name(user: Mapping[str, Any]) -> str:
    core = user.get("core") or {}
    legacy = user.get("legacy") or {}
    return str(core.get("screen_name") or legacy.get("screen_name") or "")


def mentions(entities: Mapping[str, Any], text: str) -> tuple[str, ...]:
    """Lower-cased screen names a tweet mentions: X's entities, or the text when X sent none.

    X omits `entities.user_mentions` on most replies in TweetDetail pages, although their text
    starts with the "@name" reply prefix; without it every reply looks like it mentions no one.
    """
    listed = entities.get("user_mentions") if isinstance(entities, Mapping) else None
    if listed:
        return tuple(str(m.get("screen_name", "")).lower() for m in listed)
    return tuple(dict.fromkeys(m.lower() for m in _MENTION.findall(text)))


def parse_tweet_result(result: Any) -> ScrapedTweet | None:
    """A ScrapedTweet from a `tweet_results.result` object, or None if it is not a tweet."""
    obj = _unwrap(result)
    if obj is None or "rest_id" not in obj:
        return None
    # Since 2026-05 X may send legacy=null with the fields at the top level.
    legacy = obj.get("legacy") or obj
    retweeted = parse_tweet_result((legacy.get("retweeted_status_result") or {}).get("result"))
    quoted = parse_tweet_result((obj.get("quoted_status_result") or {}).get("result"))
    return _tweet(obj, legacy, retweeted, quoted)


def _tweet(
    obj: Mapping[str, Any],
    legacy: Mapping[str, Any],
    retweeted: ScrapedTweet | None,
    quoted: ScrapedTweet | None,
) -> ScrapedTweet:
    user = ((obj.get("core") or {}).get("user_results") or {}).get("result") or {}
    tweet_id = int(obj["rest_id"])
    created = legacy.get("created_at")
    note = (((obj.get("note_tweet") or {}).get("note_tweet_results") or {}).get("result")) or {}
    text = str(note.get("text") or legacy.get("full_text") or "")
    if retweeted is not None and retweeted.author_username and text.endswith("…"):
        # X cuts a retweet's text at 140 characters; twscrape rebuilds it from the original.
        text = f"RT @{retweeted.author_username}: {retweeted.text}"
    views = _int_or_none((obj.get("views") or {}).get("count"))
    if views is None and retweeted is not None:
        views = retweeted.view_count  # a retweet shows the original's views, as on x.com
    return ScrapedTweet(
        id=tweet_id,
        author_id=int(user.get("rest_id") or legacy.get("user_id_str") or 0),
        author_username=_screen_name(user),
        text=text,
        created_at=parse_x_date(created) if created else snowflake_time(tweet_id),
        lang=str(legacy.get("lang") or ""),
        reply_count=int(legacy.get("reply_count") or 0),
        retweet_count=int(legacy.get("retweet_count") or 0),
        like_count=int(legacy.get("favorite_count") or 0),
        quote_count=int(legacy.get("quote_count") or 0),
        view_count=views,
        conversation_id=int(legacy.get("conversation_id_str") or tweet_id),
        in_reply_to_id=_int_or_none(legacy.get("in_reply_to_status_id_str")),
        in_reply_to_user_id=_int_or_none(legacy.get("in_reply_to_user_id_str")),
        quoted_id=_int_or_none(legacy.get("quoted_status_id_str")),
        quoted_author_username=(quoted.author_username or None) if quoted else None,
        mentioned_usernames=mentions(legacy.get("entities") or {}, text),
        raw=obj,
        retweeted_id=retweeted.id if retweeted else None,
        retweeted=retweeted,
        quoted=quoted,
    )


def _entries(obj: Any) -> Iterator[Mapping[str, Any]]:
    """Every `entries` list under any `instructions` of a GraphQL response."""
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            instructions = node.get("instructions")
            if isinstance(instructions, list):
                for ins in instructions:
                    if isinstance(ins, Mapping):
                        yield from ins.get("entries") or ()
                        if isinstance(ins.get("entry"), Mapping):  # TimelinePinEntry
                            yield ins["entry"]
                continue
            stack.extend(v for v in node.values() if isinstance(v, Mapping | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, Mapping | list))


def _item_results(content: Mapping[str, Any]) -> Iterator[Any]:
    item = content.get("itemContent")
    if isinstance(item, Mapping):
        yield (item.get("tweet_results") or {}).get("result")
    for sub in content.get("items") or ():
        sub_item = (sub.get("item") or {}).get("itemContent") if isinstance(sub, Mapping) else None
        if isinstance(sub_item, Mapping):
            yield (sub_item.get("tweet_results") or {}).get("result")


def _cursor(content: Mapping[str, Any], cursor_type: str) -> str | None:
    for node in (content, content.get("itemContent") or {}):
        if node.get("cursorType") == cursor_type and isinstance(node.get("value"), str):
            return str(node["value"])
    return None


def parse_page(response: Mapping[str, Any], cursor_type: str = "Bottom") -> Page:
    """The tweets of a timeline page (entries only, in order, unique), the quoted tweets they
    carry that are not entries themselves, and the page's next cursor."""
    tweets: list[ScrapedTweet] = []
    unreadable: list[UnreadableItem] = []
    seen: set[int] = set()
    cursor = None
    for entry in _entries(response):
        entry_id = str(entry.get("entryId", ""))
        content = entry.get("content") or {}
        if entry_id.startswith(_SKIPPED_ENTRY_PREFIXES):
            cursor = _cursor(content, cursor_type) or cursor
            continue
        for result in _item_results(content):
            try:
                tweet = parse_tweet_result(result)
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                unreadable.append(_unreadable(result, entry_id, exc))
                continue
            if tweet is not None and tweet.id not in seen:
                seen.add(tweet.id)
                tweets.append(tweet)
    embedded = _embedded(tweets, seen)
    known = {t.id: t for t in (*tweets, *embedded, *(t.retweeted for t in tweets if t.retweeted))}
    return Page(
        tweets=[_with_quoted_author(t, known) for t in tweets],
        cursor=cursor,
        embedded=[_with_quoted_author(t, known) for t in embedded],
        unreadable=tuple(unreadable),
    )


def _embedded(tweets: list[ScrapedTweet], entry_ids: set[int]) -> list[ScrapedTweet]:
    """Quoted tweets (of entries and of retweeted originals) that are not entries; retweeted
    originals themselves are left out, as twscrape leaves them out."""
    retweeted = {t.retweeted_id for t in tweets}
    found: dict[int, ScrapedTweet] = {}
    for tweet in tweets:
        for holder in (tweet, tweet.retweeted):
            quoted = holder.quoted if holder is not None else None
            if quoted is not None and quoted.id not in entry_ids and quoted.id not in retweeted:
                found.setdefault(quoted.id, quoted)
    return list(found.values())


def _with_quoted_author(tweet: ScrapedTweet, known: Mapping[int, ScrapedTweet]) -> ScrapedTweet:
    """A retweet of a quote names the quoted id but not its author: find it on the page."""
    if tweet.quoted_id is None or tweet.quoted_author_username is not None:
        return tweet
    quoted = known.get(tweet.quoted_id)
    if quoted is None or not quoted.author_username:
        return tweet
    return replace(tweet, quoted_author_username=quoted.author_username, quoted=quoted)


def gone_from(response: Mapping[str, Any], tweet_id: int) -> bool:
    """Whether a TweetDetail answer says the tweet is gone: X's "No status found" (code 144) or
    a tombstone where the tweet should be (deleted by its author, or its account suspended)."""
    errors = response.get("errors") or ()
    if any(isinstance(e, Mapping) and e.get("code") == 144 for e in errors):
        return True
    for entry in _entries(response):
        if str(entry.get("entryId", "")) == f"tweet-{tweet_id}":
            for result in _item_results(entry.get("content") or {}):
                if isinstance(result, Mapping) and result.get("__typename") == "TweetTombstone":
                    return True
    return False


def _unreadable(result: Any, entry_id: str, exc: Exception) -> UnreadableItem:
    obj = _unwrap(result)
    ref = str((obj or {}).get("rest_id") or entry_id)[:64]
    detail = f"{type(exc).__name__}: {exc}"[:300]
    return UnreadableItem(ref=ref, reason="malformed_tweet", detail=detail)
