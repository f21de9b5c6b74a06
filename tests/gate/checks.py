"""What the chaos scenario reads back to judge a run: ledger, dead letters, history, the fake."""

from __future__ import annotations

import base64
import json
import sqlite3
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from twitstack.writes import keys
from twitstack.writes.ledger_types import as_text

UNSETTLED_STATES = ("pending", "approved", "sending", "unknown", "needs_review")


@dataclass(frozen=True)
class LedgerEntry:
    """The parts of one `writes:request:<id>` hash the checks need."""

    id: str
    state: str
    action: str
    text: str
    author: str
    last_reason: str
    result: dict[str, Any]
    parts: tuple[str, ...] = ()  # every part's text, for a thread (`text` is the first's)


async def read_ledger(redis: Redis) -> dict[str, LedgerEntry]:
    """Every request hash in the ledger, by id."""
    out: dict[str, LedgerEntry] = {}
    async for key in redis.scan_iter(match=keys.REQUEST_PREFIX + "*", count=1000):
        fields = {as_text(k): as_text(v) for k, v in (await redis.hgetall(key)).items()}
        if "request" not in fields:
            continue
        try:
            request = json.loads(fields["request"])
        except ValueError:
            continue  # a poisoned record (the hostile-tenant scenario); quarantined, not ours
        payload = request["payload"]
        parts = tuple(str(p.get("text", "")) for p in payload.get("parts") or [])
        out[request["id"]] = LedgerEntry(
            id=request["id"],
            state=fields.get("state", ""),
            action=request["action"],
            text=parts[0] if parts else str(payload.get("text", "")),
            parts=parts,
            author=str(request.get("author") or ""),
            last_reason=fields.get("last_reason", ""),
            result=json.loads(fields["result"]) if fields.get("result") else {},
        )
    return out


async def index_sizes(redis: Redis) -> dict[str, int]:
    """How many ids each unsettled state's index holds."""
    return {state: int(await redis.zcard(keys.state_index(state))) for state in UNSETTLED_STATES}


async def dead_letters(redis: Redis) -> list[dict[str, Any]]:
    """The records in write_queue:dead, with `raw_bytes` decoded back to the message."""
    records = []
    for raw in await redis.lrange(keys.DEAD_LETTER, 0, -1):
        record = json.loads(raw)
        if record.get("raw") is not None:
            record["raw_bytes"] = str(record["raw"]).encode()
        else:
            record["raw_bytes"] = base64.b64decode(record["raw_b64"])
        records.append(record)
    return records


def fake_counts(xapi_url: str) -> tuple[Counter[str], Counter[str]]:
    """Per-text counts of posts and DMs stored at the fake X (live and deleted)."""
    posts = httpx.get(f"{xapi_url}/_sandbox/posts/counts", timeout=30).json()["counts"]
    dms = httpx.get(f"{xapi_url}/_sandbox/dms/counts", timeout=30).json()["counts"]
    return Counter({str(k): int(v) for k, v in posts.items()}), Counter(
        {str(k): int(v) for k, v in dms.items()}
    )


def fake_ids(xapi_url: str) -> dict[tuple[str, str], str]:
    """(kind, id) -> text of every post (live or deleted) and DM stored at the fake X."""
    posts = httpx.get(f"{xapi_url}/_sandbox/posts", timeout=30).json()
    dms = httpx.get(f"{xapi_url}/_sandbox/dms", timeout=30).json()["dms"]
    out = {("tweet", str(p["id"])): str(p["text"]) for p in posts["posts"] + posts["deleted"]}
    out.update({("dm", str(m["id"])): str(m["text"]) for m in dms})
    return out


def claimed_posts(ledger: dict[str, LedgerEntry], stored: dict[tuple[str, str], str]) -> list[str]:
    """Executed tweets and DMs whose recorded id is not their own post, or shared by two."""
    problems = []
    owners: dict[tuple[str, str], str] = {}
    for entry in ledger.values():
        if entry.state != "executed" or entry.action not in ("tweet", "dm"):
            continue
        field = "tweet_id" if entry.action == "tweet" else "dm_event_id"
        post = (entry.action, str(entry.result.get(field, "")))
        if stored.get(post) != unicodedata.normalize("NFC", entry.text):
            problems.append(f"executed {entry.id} records {post}, which is not its text")
        if post in owners:
            problems.append(f"{entry.id} and {owners[post]} both record {post}")
        owners[post] = entry.id
    return problems


def fake_replies(xapi_url: str) -> dict[str, str | None]:
    """Post id -> the id it replies to, for every post (live or deleted) at the fake X."""
    posts = httpx.get(f"{xapi_url}/_sandbox/posts", timeout=30).json()
    return {str(p["id"]): p.get("reply_to") for p in posts["posts"] + posts["deleted"]}


def thread_chains(
    ledger: dict[str, LedgerEntry],
    stored: dict[tuple[str, str], str],
    replies: dict[str, str | None],
) -> list[str]:
    """Executed threads whose ids are not their parts in order, each answering the one before."""
    problems = []
    for entry in ledger.values():
        if entry.action != "thread" or entry.state != "executed":
            continue
        ids = [str(i) for i in entry.result.get("thread_ids") or []]
        if len(ids) != len(entry.parts):
            problems.append(f"thread {entry.id} records {len(ids)} ids for {len(entry.parts)}")
            continue
        previous = None
        for index, (post_id, text) in enumerate(zip(ids, entry.parts, strict=True)):
            if stored.get(("tweet", post_id)) != unicodedata.normalize("NFC", text):
                problems.append(f"thread {entry.id} part {index + 1}: {post_id} is not its text")
            if replies.get(post_id) != previous:
                problems.append(
                    f"thread {entry.id} part {index + 1} answers {replies.get(post_id)}, "
                    f"not {previous}"
                )
            previous = post_id
    return problems


async def stream_events(redis: Redis) -> dict[str, tuple[str, str, str, str]]:
    """writes:events as stream id -> (request id, from, to, actor)."""
    out: dict[str, tuple[str, str, str, str]] = {}
    last = "-"
    for _ in range(10_000):
        batch = await redis.xrange(keys.EVENTS, min=last, max="+", count=1000)
        if last != "-":
            batch = batch[1:]  # xrange is inclusive of `last`
        if not batch:
            break
        for stream_id, fields in batch:
            text = {as_text(k): as_text(v) for k, v in fields.items()}
            out[as_text(stream_id)] = (
                text["id"],
                text.get("from", ""),
                text["to"],
                text.get("actor", ""),
            )
        last = as_text(batch[-1][0])
    return out


def history_events(db_path: Path) -> dict[str, tuple[str, str, str, str]]:
    """Moderation's copy of the stream: request_events as stream id -> (id, from, to, actor)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT stream_id, request_id, from_state, to_state, actor FROM request_events"
        ).fetchall()
    return {str(r[0]): (str(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows}


def history_states(db_path: Path) -> dict[str, str]:
    """Moderation's projection of each request's current state."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, state FROM requests").fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def history_cursor(db_path: Path) -> str | None:
    """The last stream id moderation has ingested."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT last_id FROM ingest_cursor WHERE stream = ?", (keys.EVENTS,)
        ).fetchone()
    return None if row is None else str(row[0])
