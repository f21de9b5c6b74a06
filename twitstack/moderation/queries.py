"""Read side of the request history: filtered, paginated lists and one request's events."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twitstack.moderation.card_context import parse_context
from twitstack.moderation.db import Database, Row
from twitstack.moderation.list_cache import ListCache

ACTIONS = ("tweet", "dm", "delete", "thread")
# Age filter name -> (comparison, seconds): "older than" / "newer than".
AGES: Mapping[str, tuple[str, int]] = {
    "lt1h": ("newer", 3600),
    "gt1h": ("older", 3600),
    "gt24h": ("older", 86400),
    "gt7d": ("older", 7 * 86400),
}
SORTS = ("newest", "oldest")
_LIST_COLUMNS = (
    "id, action, account, author, state, text, revision, created_at, updated_at, not_before,"
    " last_actor, last_reason, result, refusal, context, content_hash, media"
)


@dataclass(frozen=True)
class RequestRow:
    """One request as the history holds it (the latest ingested ledger record)."""

    id: str
    action: str
    account: str
    author: str
    state: str
    text: str
    revision: int
    created_at: float
    updated_at: float
    not_before: float | None
    last_actor: str
    last_reason: str
    result: dict[str, Any] | None
    data: dict[str, Any]
    refusal: str = ""  # why X would refuse it, from the scraper's source record
    context: dict[str, str] = field(default_factory=dict)  # see card_context.context_of
    content_hash: str = ""  # of the projected revision ("" for rows projected before v7)
    media: str = ""  # what it attaches, see media_badge.media_of

    @classmethod
    def from_row(cls, row: Row) -> RequestRow:
        names = row.keys()  # a new list per call: read once (this runs for every listed row)
        return cls(
            id=str(row["id"]),
            action=str(row["action"]),
            account=str(row["account"]),
            author=str(row["author"]),
            state=str(row["state"]),
            text=str(row["text"]),
            revision=int(row["revision"]),
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
            not_before=None if row["not_before"] is None else float(row["not_before"]),
            last_actor=str(row["last_actor"]),
            last_reason=str(row["last_reason"]),
            result=json.loads(row["result"]) if row["result"] else None,
            # List queries leave the full record out: parsing it per row is most of their cost.
            data=json.loads(row["data"]) if "data" in names else {},
            refusal=str(row["refusal"] or ""),
            context=parse_context(row["context"]) if "context" in names else {},
            content_hash=str(row["content_hash"]) if "content_hash" in names else "",
            media=str(row["media"] or "") if "media" in names else "",
        )

    def summary(self) -> dict[str, Any]:
        """The JSON shape of a request in API lists."""
        return {
            "id": self.id,
            "action": self.action,
            "account": self.account,
            "author": self.author or None,
            "state": self.state,
            "text": self.text,
            "revision": self.revision,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "refusal": self.refusal or None,
        }


@dataclass(frozen=True)
class EventRow:
    """One state change of a request."""

    stream_id: str
    from_state: str
    to_state: str
    actor: str
    reason: str
    at: float
    revision: int
    result: dict[str, Any] | None


@dataclass(frozen=True)
class RequestFilter:
    """What a list shows: states, optional action/account/author/age filters and the order."""

    states: tuple[str, ...]
    action: str | None = None
    account: str | None = None
    author: str | None = None
    age: str | None = None
    sort: str = "newest"
    order_by: str = "created_at"

    @classmethod
    def from_query(
        cls, query: Mapping[str, str], *, states: tuple[str, ...], order_by: str = "created_at"
    ) -> RequestFilter:
        """Parse ?action=&account=&author=&age=&sort= leniently: unknown values are ignored."""
        action = query.get("action") or None
        age = query.get("age") or None
        sort = query.get("sort", "newest")
        return cls(
            states=states,
            action=action if action in ACTIONS else None,
            account=(query.get("account") or "").strip()[:64] or None,
            author=(query.get("author") or "").strip()[:256] or None,
            age=age if age in AGES else None,
            sort=sort if sort in SORTS else "newest",
            order_by=order_by,
        )

    def as_query(self) -> dict[str, str]:
        """The filter as URL query parameters (for links that keep it)."""
        pairs = {
            "action": self.action,
            "account": self.account,
            "author": self.author,
            "age": self.age,
            "sort": None if self.sort == "newest" else self.sort,
        }
        return {k: v for k, v in pairs.items() if v}


class RequestQueryset:
    """A `Queryset` over the history's requests table for one filter."""

    def __init__(self, db: Database, flt: RequestFilter, *, now: float) -> None:
        self._db = db
        self._filter = flt
        clauses = [f"state IN ({','.join('?' for _ in flt.states)})"]
        params: list[Any] = list(flt.states)
        for column, value in (
            ("action", flt.action),
            ("account", flt.account),
            ("author", flt.author),
        ):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if flt.age:
            direction, seconds = AGES[flt.age]
            clauses.append("created_at >= ?" if direction == "newer" else "created_at < ?")
            params.append(now - seconds)
        self._where = " AND ".join(clauses)
        self._params = params
        # order_by is chosen by code, never by the URL; the direction is one of two literals.
        order_column = "updated_at" if flt.order_by == "updated_at" else "created_at"
        direction = "ASC" if flt.sort == "oldest" else "DESC"
        self._order = f"{order_column} {direction}, id {direction}"

    async def count(self) -> int:
        flt = self._filter
        if len(flt.states) == 1 and not (flt.action or flt.account or flt.author or flt.age):
            return await count_in_state(self._db, flt.states[0])
        return int(
            await self._db.fetchval(
                f"SELECT count(*) FROM requests WHERE {self._where}", self._params
            )
        )

    async def fetch(self, limit: int, offset: int) -> list[RequestRow]:
        # The page's rowids come from the covering index alone; only those rows are then read.
        # A plain LIMIT/OFFSET would load every skipped row's text and record from the table.
        rows = await self._db.fetchall(
            f"SELECT {_LIST_COLUMNS} FROM requests WHERE rowid IN"
            f" (SELECT rowid FROM requests WHERE {self._where}"
            f" ORDER BY {self._order} LIMIT ? OFFSET ?) ORDER BY {self._order}",
            (*self._params, limit, offset),
        )
        return [RequestRow.from_row(r) for r in rows]


async def get_request_row(db: Database, request_id: str) -> RequestRow | None:
    row = await db.fetchone("SELECT * FROM requests WHERE id = ?", (request_id,))
    return None if row is None else RequestRow.from_row(row)


async def events_for(db: Database, request_id: str) -> list[EventRow]:
    """Every ingested event of a request, oldest first."""
    rows = await db.fetchall(
        "SELECT * FROM request_events WHERE request_id = ? ORDER BY at, stream_id", (request_id,)
    )
    return [
        EventRow(
            stream_id=str(r["stream_id"]),
            from_state=str(r["from_state"]),
            to_state=str(r["to_state"]),
            actor=str(r["actor"]),
            reason=str(r["reason"]),
            at=float(r["at"]),
            revision=int(r["revision"]),
            result=json.loads(r["result"]) if r["result"] else None,
        )
        for r in rows
    ]


async def count_in_state(db: Database, state: str) -> int:
    """How many requests are in `state` (kept by triggers, so no scan)."""
    value = await db.fetchval("SELECT n FROM state_counts WHERE state = ?", (state,))
    return int(value or 0)


class FilterOptions:
    """Distinct accounts and authors among pending requests, for the queue's drop-downs.

    Computing them scans every pending row, so they are cached for `ttl_s` (a new author shows
    up in the drop-down a few seconds late, which nobody notices) and computed by one caller
    while concurrent ones wait: an expiry under load must not start one scan per request.
    """

    def __init__(self, db: Database, clock: Callable[[], float], *, ttl_s: float = 10.0) -> None:
        self._db = db
        # Time alone decides freshness here: every approval changes the projection, and
        # rescanning for each would cost more than the drop-downs are worth.
        self._cache: ListCache[list[str]] = ListCache(clock, lambda: 0, ttl_s=ttl_s)

    async def values(self, column: str, state: str = "pending") -> list[str]:
        if column not in ("account", "author"):
            raise ValueError(f"expected account or author, found {column!r}")

        async def scan() -> list[str]:
            rows = await self._db.fetchall(
                f"SELECT DISTINCT {column} FROM requests WHERE state = ? AND {column} != ''"
                f" ORDER BY {column} LIMIT 200",
                (state,),
            )
            return [str(r[0]) for r in rows]

        return await self._cache.fetch((column, state), scan)
