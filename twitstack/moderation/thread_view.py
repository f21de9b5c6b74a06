"""What a moderator sees of a thread: each part with its length, and which parts are live on X."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twitstack.writes.text import MAX_TWEET_WEIGHTED_LENGTH, tweet_weighted_length
from twitstack.writes.validation import is_snowflake_id


def post_url(tweet_id: str) -> str:
    """X's address of a post, without knowing its author's handle."""
    return f"https://x.com/i/web/status/{tweet_id}"


def thread_parts_view(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each part's number, text, weighted length and extras (poll, quote), in order."""
    parts = payload.get("parts")
    out = []
    for index, part in enumerate(parts if isinstance(parts, list) else []):
        if not isinstance(part, Mapping):
            continue
        raw = part.get("text")
        text = raw if isinstance(raw, str) else ""
        out.append(
            {
                "part": index + 1,
                "text": text,
                "weighted_length": tweet_weighted_length(text),
                "max_length": MAX_TWEET_WEIGHTED_LENGTH,
                "poll": part.get("poll"),
                "quote_tweet_id": part.get("quote_tweet_id"),
            }
        )
    return out


def live_parts(result: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The parts X has, from a thread's ledger result: number, id and link of each."""
    ids = (result or {}).get("thread_ids")
    return [
        {"part": index + 1, "tweet_id": tweet_id, "url": post_url(tweet_id)}
        for index, tweet_id in enumerate(ids if isinstance(ids, list) else [])
        if is_snowflake_id(tweet_id)
    ]


def preview_parts(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The posts a composed tweet or thread payload makes, each with its exact count."""
    if "parts" in payload:
        return thread_parts_view(payload)
    return thread_parts_view({"parts": [payload]})
