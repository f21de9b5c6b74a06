"""Builders for X's GraphQL response shapes (timelines, entries, cursors, users, tweets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twitstack.sandbox.graphql.corpus import SynthTweet, SynthUser

JSON = dict[str, Any]


def _x_date(tweet: SynthTweet) -> str:
    # X's legacy created_at is RFC 2822-ish: "Wed Jul 08 21:59:10 +0000 2026".
    return tweet.created_at.strftime("%a %b %d %H:%M:%S +0000 %Y")


def user_obj(user: SynthUser) -> JSON:
    return {
        "__typename": "User",
        "rest_id": str(user.id),
        "is_blue_verified": False,
        "core": {
            "screen_name": user.screen_name,
            "name": user.name,
            "created_at": "Mon Feb 09 22:11:12 +0000 2009",
        },
        "legacy": {
            "description": f"synthetic account {user.screen_name}",
            "followers_count": user.followers,
            "friends_count": 10,
            "statuses_count": 100,
            "favourites_count": 5,
            "listed_count": 1,
            "media_count": 0,
            "location": "",
            "profile_image_url_https": "",
        },
    }


def tweet_obj(tweet: SynthTweet, *, with_quoted: bool = True) -> JSON:
    legacy: JSON = {
        "created_at": _x_date(tweet),
        "full_text": tweet.text,
        "lang": tweet.lang,
        "conversation_id_str": str(tweet.conversation_id),
        "user_id_str": str(tweet.author.id),
        "favorite_count": tweet.likes,
        "retweet_count": tweet.retweets,
        "reply_count": tweet.replies,
        "quote_count": tweet.quotes,
        "bookmark_count": 0,
        "is_quote_status": tweet.quoted is not None,
        "entities": {
            "hashtags": [],
            "symbols": [],
            "urls": [],
            "user_mentions": [
                {"id_str": str(m.id), "screen_name": m.screen_name, "name": m.name}
                for m in tweet.mentions
            ],
        },
    }
    if tweet.in_reply_to is not None:
        parent = tweet.in_reply_to
        legacy["in_reply_to_status_id_str"] = str(parent.id)
        legacy["in_reply_to_user_id_str"] = str(parent.author.id)
        legacy["in_reply_to_screen_name"] = parent.author.screen_name
    obj: JSON = {
        "__typename": "Tweet",
        "rest_id": str(tweet.id),
        "core": {"user_results": {"result": user_obj(tweet.author)}},
        "views": {"count": str(tweet.views), "state": "EnabledWithCount"},
        "legacy": legacy,
    }
    if tweet.malformed:
        legacy["reply_count"] = "many"
    if tweet.quoted is not None:
        legacy["quoted_status_id_str"] = str(tweet.quoted.id)
        if with_quoted:
            obj["quoted_status_result"] = {"result": tweet_obj(tweet.quoted, with_quoted=False)}
    return obj


def tweet_entry(tweet: SynthTweet) -> JSON:
    return {
        "entryId": f"tweet-{tweet.id}",
        "sortIndex": str(tweet.id),
        "content": {
            "entryType": "TimelineTimelineItem",
            "__typename": "TimelineTimelineItem",
            "itemContent": {
                "itemType": "TimelineTweet",
                "__typename": "TimelineTweet",
                "tweet_results": {"result": tweet_obj(tweet)},
            },
        },
    }


def tombstone_entry(tweet_id: int) -> JSON:
    """What TweetDetail shows where a deleted tweet was."""
    text = "This Post was deleted by the Post author. Learn more"
    return {
        "entryId": f"tweet-{tweet_id}",
        "sortIndex": str(tweet_id),
        "content": {
            "entryType": "TimelineTimelineItem",
            "__typename": "TimelineTimelineItem",
            "itemContent": {
                "itemType": "TimelineTweet",
                "__typename": "TimelineTweet",
                "tweet_results": {
                    "result": {
                        "__typename": "TweetTombstone",
                        "tombstone": {
                            "__typename": "TextTombstone",
                            "text": {"rtl": False, "text": text, "entities": []},
                        },
                    }
                },
            },
        },
    }


def conversation_entry(tweet: SynthTweet) -> JSON:
    """A reply as X sends it in TweetDetail: a one-item conversation thread module."""
    return {
        "entryId": f"conversationthread-{tweet.id}",
        "sortIndex": str(tweet.id),
        "content": {
            "entryType": "TimelineTimelineModule",
            "__typename": "TimelineTimelineModule",
            "items": [
                {
                    "entryId": f"conversationthread-{tweet.id}-tweet-{tweet.id}",
                    "item": {
                        "itemContent": {
                            "itemType": "TimelineTweet",
                            "__typename": "TimelineTweet",
                            "tweet_results": {"result": tweet_obj(tweet)},
                        }
                    },
                }
            ],
        },
    }


def cursor_entry(value: str, cursor_type: str = "Bottom") -> JSON:
    if cursor_type == "ShowMoreThreads":
        # TweetDetail's "show more replies" cursor sits inside an item, not a cursor entry.
        return {
            "entryId": f"cursor-showmorethreads-{value}",
            "sortIndex": "0",
            "content": {
                "entryType": "TimelineTimelineItem",
                "__typename": "TimelineTimelineItem",
                "itemContent": {
                    "itemType": "TimelineTimelineCursor",
                    "__typename": "TimelineTimelineCursor",
                    "cursorType": "ShowMoreThreads",
                    "value": value,
                },
            },
        }
    return {
        "entryId": f"cursor-{cursor_type.lower()}-{value}",
        "sortIndex": "0",
        "content": {
            "entryType": "TimelineTimelineCursor",
            "__typename": "TimelineTimelineCursor",
            "cursorType": cursor_type,
            "value": value,
        },
    }


def timeline(entries: Sequence[JSON]) -> JSON:
    return {"instructions": [{"type": "TimelineAddEntries", "entries": list(entries)}]}


def search_page(entries: Sequence[JSON]) -> JSON:
    return {"data": {"search_by_raw_query": {"search_timeline": {"timeline": timeline(entries)}}}}


def user_tweets_page(entries: Sequence[JSON]) -> JSON:
    return {
        "data": {
            "user": {
                "result": {
                    "__typename": "User",
                    "timeline": {"timeline": timeline(entries)},
                }
            }
        }
    }


def list_page(entries: Sequence[JSON]) -> JSON:
    return {"data": {"list": {"tweets_timeline": {"timeline": timeline(entries)}}}}


def tweet_detail_page(entries: Sequence[JSON]) -> JSON:
    return {"data": {"threaded_conversation_with_injections_v2": timeline(entries)}}


def user_page(user: SynthUser | None) -> JSON:
    return {"data": {"user": {"result": user_obj(user)}}} if user else {"data": {}}


def error_body(code: int, message: str) -> JSON:
    return {"errors": [{"code": code, "message": message}]}
