"""What a hostile tenant does: an author's API key and raw Redis access, used to break things.

Each action records what a correct daemon answers, so the scenario can judge it afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from redis.asyncio import Redis

from tests.gate.traffic import ApiClient, malformed
from twitstack.writes import keys
from twitstack.writes.models import MAX_REVISION

EVENT_TIME = "2026-01-01T00:00:00+00:00"


@dataclass
class HostileLog:
    """What the tenant did and what it saw; `problems` are answers a correct daemon never gives."""

    problems: list[str] = field(default_factory=list)
    poisoned_records: list[str] = field(default_factory=list)
    bad_events: list[str] = field(default_factory=list)
    malformed: dict[bytes, str] = field(default_factory=dict)  # raw -> dead-letter reason

    def expect(self, what: str, response: httpx.Response, statuses: set[int]) -> None:
        if response.status_code not in statuses:
            self.problems.append(
                f"{what}: {response.status_code} {response.text[:200]}, expected {statuses}"
            )


async def api_abuse(api: ApiClient, log: HostileLog, tag: str) -> list[str]:
    """The reported attack and its relatives through the JSON API; the ids it created."""
    created: list[str] = []

    async def create(body: Any, what: str, statuses: set[int]) -> httpx.Response:
        response = await api.call("POST", "/api/requests", body)
        log.expect(what, response, statuses)
        if response.status_code == 201:
            created.append(str(response.json()["id"]))
        return response

    top = await create(
        {"action": "tweet", "payload": {"text": f"hostile {tag} top"}, "revision": MAX_REVISION},
        "create at the highest revision",
        {201},
    )
    if top.status_code == 201:
        request_id = top.json()["id"]
        edit = {"revision": MAX_REVISION, "payload": {"text": f"hostile {tag} top edited"}}
        log.expect(
            "edit past the highest revision",
            await api.call("PATCH", f"/api/requests/{request_id}", edit),
            {422},
        )
        huge = {"revision": 10**30, "payload": {"text": f"hostile {tag} huge"}}
        log.expect(
            "edit with a 30-digit revision",
            await api.call("PATCH", f"/api/requests/{request_id}", huge),
            {422},
        )
    for revision in (MAX_REVISION + 1, 10**30, -1, 0, "1", 1.5):
        body = {"action": "tweet", "payload": {"text": f"hostile {tag} r"}, "revision": revision}
        await create(body, f"create with revision {revision!r}", {422})
    deep: Any = {"text": "deep"}
    for _ in range(40):
        deep = {"d": deep}
    await create({"action": "tweet", "payload": deep}, "40-deep payload", {400, 422})
    await create({"action": "tweet", "payload": {"text": "x", "n": 10**400}}, "huge int", {422})
    await create({"action": "dm", "payload": {"recipient_id": "9" * 300, "text": "x"}},
                 "300-digit recipient", {422})  # fmt: skip
    await create({"action": "tweet", "payload": {"text": "\u202e" * 500}}, "bidi flood", {201, 422})
    unknown = {"sha256": "0" * 64, "type": "image/png", "size": 100}
    await create({"action": "tweet", "payload": {"text": f"hostile {tag} media",
                                                  "media": {"attachments": [unknown]}}},
                 "attachment not in the media store", {422})  # fmt: skip
    await raw_abuse(api, log)
    return created


async def raw_abuse(api: ApiClient, log: HostileLog) -> None:
    """Bodies no JSON client sends: 10 000-deep nesting, 1 MB, not JSON; anonymous too."""
    headers = {"Authorization": f"Bearer {await api._token()}", "Content-Type": "application/json"}
    url = f"{api.base_url}/api/requests"
    bodies = {
        "10000-deep JSON": ("[" * 10_000 + "]" * 10_000, {400, 413, 422}),
        "1 MB body": ('{"action": "tweet", "payload": {"text": "' + "x" * 1_000_000 + '"}}', {413}),
        "not JSON": ("{nope", {400, 422}),
    }
    for what, (body, statuses) in bodies.items():
        log.expect(what, await api.http.post(url, content=body, headers=headers), statuses)
    media_url = f"{api.base_url}/api/media"
    uploads = {
        "script as image/png": (b"<svg onload=alert(1)>", {415}),
        "6 MB image": (b"\x89PNG\r\n\x1a\n" + b"\0" * (6 * 1024 * 1024), {413}),
    }
    for what, (data, statuses) in uploads.items():
        image = {**headers, "Content-Type": "image/png"}
        log.expect(what, await api.http.post(media_url, content=data, headers=image), statuses)
    token_url = f"{api.base_url}/api/auth/token"
    big = '{"api_key": "' + "k" * 200_000 + '"}'
    log.expect("200 KB anonymous body", await api.http.post(token_url, content=big), {413})


async def redis_abuse(redis: Redis, victims: list[str], log: HostileLog, tag: str) -> None:
    """Poison events, records and queue messages straight into Redis."""
    bad = await redis.xadd(
        keys.EVENTS, {"id": f"hostile-{tag}", "to": "exploded", "time": EVENT_TIME}
    )
    log.bad_events.append(bad.decode())
    bad = await redis.xadd(keys.EVENTS, {"garbage": "no fields a ledger event has"})
    log.bad_events.append(bad.decode())
    for request_id in victims[:1]:
        await redis.hset(keys.request(request_id), "request", "{not json")
        log.poisoned_records.append(request_id)
        await redis.xadd(
            keys.EVENTS,
            {"id": request_id, "from": "pending", "to": "pending", "time": EVENT_TIME},
        )
    for index in range(9):
        raw, reason = malformed(10_000 + index)
        log.malformed[raw] = reason
        await redis.rpush(keys.WRITE_QUEUE, raw)
        await anyio.sleep(0.05)
    ghost = {"sha256": "f" * 64, "type": "image/jpeg", "size": 10}
    payload = {"text": f"hostile {tag} ghost file", "media": {"attachments": [ghost]}}
    raw = json.dumps({"action": "tweet", "payload": payload}).encode()
    log.malformed[raw] = "media_missing"
    await redis.rpush(keys.WRITE_QUEUE, raw)


def quarantined_kinds(entries: list[bytes]) -> set[tuple[str, str]]:
    """(source, ref) of the quarantine list's entries."""
    out = set()
    for raw in entries:
        entry = json.loads(raw)
        out.add((str(entry["source"]), str(entry["ref"])))
    return out
