"""Tweets and DMs read back from X for reconciliation, parsed leniently from X's JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ReadBack:
    """Tweets or DMs read back from X, newest first.

    `complete` is False when the page limit stopped the read before X ran out of items: then
    an item missing from `items` may still exist, and absence must not be concluded.
    """

    items: list[PostedItem]
    complete: bool


@dataclass(frozen=True, slots=True)
class PostedItem:
    """A tweet or DM read back from X for reconciliation."""

    id: str
    text: str
    created_at: datetime | None = None
    entities: Mapping[str, Any] | None = None
    author_id: str | None = None  # the tweet's author or the DM's sender
    reply_to: str | None = None  # the tweet it answers (`referenced_tweets` replied_to)
    conversation_id: str | None = None  # the id of its conversation's first tweet


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def posted_items(payload: object) -> list[PostedItem]:
    """The tweets or DMs in an X read's `data`, skipping entries without a string id."""
    data = payload.get("data") if isinstance(payload, dict) else None
    items: list[PostedItem] = []
    for raw in data if isinstance(data, list) else []:
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            entities = raw.get("entities")
            items.append(
                PostedItem(
                    id=raw["id"],
                    text=str(raw.get("text", "")),
                    created_at=_parse_time(raw.get("created_at")),
                    entities=entities if isinstance(entities, dict) else None,
                    author_id=_str_or_none(raw.get("author_id") or raw.get("sender_id")),
                    reply_to=_replied_to(raw.get("referenced_tweets")),
                    conversation_id=_str_or_none(raw.get("conversation_id")),
                )
            )
    return items


def _replied_to(refs: object) -> str | None:
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict) and ref.get("type") == "replied_to":
            return _str_or_none(ref.get("id"))
    return None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
