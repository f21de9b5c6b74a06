"""What a card needs besides its text: what a reply answers, who a DM goes to, what X said.

`context_of` runs when the history projects a ledger record, so list pages read a small JSON
column instead of parsing each request's full record. `describe` turns that column (plus what
our own posted requests say about a target) into labelled facts fit to render.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from twitstack.writes.validation import is_snowflake_id

if TYPE_CHECKING:
    from twitstack.moderation.db import Database

SNIPPET_CHARS = 200
_KEYS = (
    "reply_to",
    "quote",
    "recipient",
    "target",
    "source_id",
    "source_author",
    "source_author_id",
    "source_text",
)


def _str(value: object, limit: int = 64) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def context_of(payload: Mapping[str, Any], source: Mapping[str, Any] | None) -> str:
    """The context column of a request: its reply/quote/recipient/target ids and its source."""
    reply = payload.get("reply")
    src = source or {}
    fields = {
        "reply_to": reply.get("in_reply_to_tweet_id") if isinstance(reply, Mapping) else None,
        "quote": payload.get("quote_tweet_id"),
        "recipient": payload.get("recipient_id"),
        "target": payload.get("tweet_id"),
        "source_id": src.get("id"),
        "source_author": src.get("author"),
        "source_author_id": src.get("author_id"),
        "source_text": _str(src.get("text"), SNIPPET_CHARS),
    }
    # Only the fields present: a plain post's column is "{}", which lists read without parsing.
    kept = {k: text for k, v in fields.items() if (text := _str(v, SNIPPET_CHARS)) is not None}
    return json.dumps(kept, sort_keys=True)


def parse_context(raw: object) -> dict[str, str]:
    """The stored column back as a dict of strings (junk or an old empty column: {})."""
    if raw == "{}" or not raw:
        return {}
    try:
        data = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k in _KEYS if isinstance(v := data.get(k), str) and v}


class RowLike(Protocol):
    """What `cards_for` reads of a listed request (queries.RequestRow has it)."""

    @property
    def id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def result(self) -> dict[str, Any] | None: ...
    @property
    def context(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Target:
    """A post a request answers, quotes or deletes: its id, a link, and what we know of it."""

    tweet_id: str
    link: str | None
    author: str | None = None
    text: str | None = None
    ours: bool = False  # one of our own posted requests (its text is what we sent)


@dataclass(frozen=True)
class Card:
    """The labelled facts a card shows; `kind` is "reply", "quote", "dm", "delete" or "post"."""

    kind: str
    target: Target | None = None
    recipient_id: str | None = None
    recipient_handle: str | None = None
    x_said: str | None = None


def post_url(template: str, tweet_id: object) -> str | None:
    """The link of a post id under the configured template (ids are digits only, so safe)."""
    return template.replace("{id}", str(tweet_id)) if is_snowflake_id(tweet_id) else None


def x_said(state: str, result: Mapping[str, Any] | None) -> str | None:
    """X's own words on a failed or doubtful request, as the writer recorded them."""
    if state not in ("failed", "needs_review", "unknown") or not result:
        return None
    detail = result.get("detail")
    return detail[:500] if isinstance(detail, str) and detail.strip() else None


def describe(
    action: str,
    ctx: Mapping[str, str],
    *,
    state: str,
    result: Mapping[str, Any] | None,
    own_posts: Mapping[str, tuple[str, str]],
    url_template: str,
) -> Card:
    """The card of one request. `own_posts`: tweet id -> (account, text) of our posted ones."""
    said = x_said(state, result)
    if action == "dm":
        recipient = ctx.get("recipient")
        handle = ctx.get("source_author") if recipient == ctx.get("source_author_id") else None
        return Card("dm", recipient_id=recipient, recipient_handle=handle, x_said=said)
    for kind, key in (("reply", "reply_to"), ("quote", "quote"), ("delete", "target")):
        tweet_id = ctx.get(key)
        if tweet_id is None or (kind == "delete" and action != "delete"):
            continue
        target = Target(tweet_id, post_url(url_template, tweet_id))
        if tweet_id == ctx.get("source_id"):
            target = Target(tweet_id, target.link, ctx.get("source_author"), ctx.get("source_text"))
        elif tweet_id in own_posts:
            account, text = own_posts[tweet_id]
            target = Target(tweet_id, target.link, account, text[:SNIPPET_CHARS], ours=True)
        return Card(kind, target=target, x_said=said)
    return Card("post", x_said=said)


def wanted_posts(contexts: Iterable[Mapping[str, str]]) -> set[str]:
    """Target ids the source does not explain: worth looking up among our own posts."""
    wanted: set[str] = set()
    for ctx in contexts:
        for key in ("reply_to", "quote", "target"):
            tweet_id = ctx.get(key)
            if tweet_id and tweet_id != ctx.get("source_id") and is_snowflake_id(tweet_id):
                wanted.add(tweet_id)
    return wanted


async def own_posts(db: Database, tweet_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Our executed requests that created these post ids: id -> (account, text)."""
    ids = sorted(set(tweet_ids))[:200]
    if not ids:
        return {}
    rows = await db.fetchall(
        "SELECT posted_id, account, text FROM requests WHERE posted_id IN"
        f" ({','.join('?' for _ in ids)})",
        ids,
    )
    return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}


async def cards_for(db: Database, rows: Iterable[RowLike], url_template: str) -> dict[str, Card]:
    """The card of each listed request, by id (one indexed lookup for all their targets)."""
    rows = list(rows)
    posts = await own_posts(db, wanted_posts(r.context for r in rows))
    return {
        r.id: describe(
            r.action,
            r.context,
            state=r.state,
            result=r.result,
            own_posts=posts,
            url_template=url_template,
        )
        for r in rows
    }
