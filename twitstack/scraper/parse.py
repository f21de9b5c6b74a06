"""Parse X's GraphQL timeline pages into ScrapedTweets, walking only the entries (fast path)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from twitstack.scraper.models import Page, ScrapedTweet

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_SKIPPED_ENTRY_PREFIXES = ("cursor-", "messageprompt-", "module-", "who-to-follow-")
_TWITTER_EPOCH_MS = 1288834974657


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


def parse_tweet_result(result: Any) -> ScrapedTweet | None:
    """A ScrapedTweet from a `tweet_results.result` object, or None if it is not a tweet."""
    obj = _unwrap(result)
    if obj is None or "rest_id" not in obj:
        return None
    # Since 2026-05 X may send legacy=null with the fields at the top level.
    legacy = obj.get("legacy") or obj
    user = ((obj.get("core") or {}).get("user_results") or {}).get("result") or {}
    tweet_id = int(obj["rest_id"])
    created = legacy.get("created_at")
    entities = legacy.get("entities") or {}
    quoted = _unwrap((obj.get("quoted_status_result") or {}).get("result"))
    quoted_user = ((quoted or {}).get("core") or {}).get("user_results") or {}
    note = (((obj.get("note_tweet") or {}).get("note_tweet_results") or {}).get("result")) or {}
    return ScrapedTweet(
        id=tweet_id,
        author_id=int(user.get("rest_id") or legacy.get("user_id_str") or 0),
        author_username=_screen_name(user),
        text=str(note.get("text") or legacy.get("full_text") or ""),
        created_at=parse_x_date(created) if created else snowflake_time(tweet_id),
        lang=str(legacy.get("lang") or ""),
        reply_count=int(legacy.get("reply_count") or 0),
        retweet_count=int(legacy.get("retweet_count") or 0),
        like_count=int(legacy.get("favorite_count") or 0),
        quote_count=int(legacy.get("quote_count") or 0),
        view_count=_int_or_none((obj.get("views") or {}).get("count")),
        conversation_id=int(legacy.get("conversation_id_str") or tweet_id),
        in_reply_to_id=_int_or_none(legacy.get("in_reply_to_status_id_str")),
        in_reply_to_user_id=_int_or_none(legacy.get("in_reply_to_user_id_str")),
        quoted_id=_int_or_none(legacy.get("quoted_status_id_str")),
        quoted_author_username=_screen_name(quoted_user.get("result") or {}) or None
        if quoted
        else None,
        mentioned_usernames=tuple(
            str(m.get("screen_name", "")).lower() for m in entities.get("user_mentions") or ()
        ),
        raw=obj,
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
    """The tweets of a timeline page (entries only, in order, unique) and its next cursor."""
    tweets: list[ScrapedTweet] = []
    seen: set[int] = set()
    cursor = None
    for entry in _entries(response):
        entry_id = str(entry.get("entryId", ""))
        content = entry.get("content") or {}
        if entry_id.startswith(_SKIPPED_ENTRY_PREFIXES):
            cursor = _cursor(content, cursor_type) or cursor
            continue
        for result in _item_results(content):
            tweet = parse_tweet_result(result)
            if tweet is not None and tweet.id not in seen:
                seen.add(tweet.id)
                tweets.append(tweet)
    return Page(tweets=tweets, cursor=cursor)
