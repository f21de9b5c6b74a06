"""The three doors requests come through, malformed messages, and the moderator who approves."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import httpx
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from twitstack.writer.models import WriteAction, WriteRequest

T = TypeVar("T")
RETRY_BUDGET_S = 45.0  # longer than a daemon restart or the Redis outage
DM_RECIPIENT = "1001"  # the fake's @twitstack_friend


async def with_redis_retry(op: Callable[[], Awaitable[T]]) -> T:
    """Retry `op` through the scenario's own Redis outage (ids make a repeat harmless)."""
    with anyio.fail_after(RETRY_BUDGET_S):
        for _ in range(int(RETRY_BUDGET_S / 0.1)):
            try:
                return await op()
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await anyio.sleep(0.1)
    raise AssertionError("unreachable: fail_after fires first")


def seed_snippet_message(action: WriteAction, payload: dict[str, Any]) -> bytes:
    """Exactly the README's producer snippet: `json.dumps(rc.to_dict())`."""
    rc = WriteRequest(action=action, payload=payload)
    return json.dumps(rc.to_dict()).encode()


# Texts that trip a read-back matcher: X escapes `& < >` (so `&amp;` comes back `&amp;amp;`),
# links differ only after X replaced them with t.co, and whitespace-only variants.
_HTML = "AT&T rocks &amp; rolls &lt;b&gt; &quot;q&quot; &#39; &copy; &amp &nbsp;"
_SPACES = (" ", "  ", "\n", " \t ")


THREAD_PARTS = 3


def rpush_text(index: int, run: str) -> tuple[WriteAction, dict[str, Any], str]:
    """The index-th RPUSH-door request: four tweets for every DM, in matcher-hostile variants.

    Tweets cycle through plain, HTML character references, link-only variants (the same
    words, a different URL) and whitespace-only variants (four per group of 20 indexes);
    DMs alternate between plain and HTML references; one request in ten is a thread of
    THREAD_PARTS parts (its first part's text stands for it). Every text is unique.
    """
    if index % 10 == 3:
        parts = [f"chaos {run} thread {index} part {k} &amp; <b>" for k in range(THREAD_PARTS)]
        return WriteAction.THREAD, {"parts": [{"text": t} for t in parts]}, parts[0]
    variant = (index // 5) % 4
    if index % 5 == 4:
        text = f"chaos {run} rpush dm {index}"
        if variant % 2:
            text = f"chaos {run} dm {_HTML} {index}"
        return WriteAction.DM, {"recipient_id": DM_RECIPIENT, "text": text}, text
    if variant == 1:
        text = f"chaos {run} {_HTML} tweet {index}"
    elif variant == 2:
        text = f"chaos {run} see the link https://example.com/{run}/{index}"
    elif variant == 3:
        text = f"chaos {run} spaced {index // 20}{_SPACES[index % 5]}out"
    else:
        text = f"chaos {run} rpush tweet {index}"
    return WriteAction.TWEET, {"text": text}, text


def malformed(index: int) -> tuple[bytes, str]:
    """A unique malformed message and the dead-letter reason the decoder must give it."""
    kind = index % 9
    tag = f"m{index}"
    if kind == 0:
        return f"not json {tag}".encode(), "invalid_json"
    if kind == 1:
        return f'["{tag}"]'.encode(), "not_an_object"
    if kind == 2:
        body = {"action": "tweet", "payload": {"text": tag}, f"x{index}": 1}
        return json.dumps(body).encode(), "unknown_field"
    if kind == 3:
        return json.dumps({"payload": {"text": tag}}).encode(), "missing_field"
    if kind == 4:
        body = {"action": "tweet", "payload": {"text": "y" * 300 + tag}}
        return json.dumps(body).encode(), "invalid_payload"
    if kind == 5:
        raw = '{"action":"tweet","action":"dm","payload":{"text":"%s"}}' % tag  # noqa: UP031
        return raw.encode(), "duplicate_key"
    if kind == 6:
        return b"\xff\xfe" + tag.encode(), "invalid_utf8"
    if kind == 7:
        raw = '{"action":"tweet","payload":{"text":"%s"},"revision":NaN}' % tag  # noqa: UP031
        return raw.encode(), "non_finite_number"
    deep: Any = tag
    for _ in range(10):
        deep = {"d": deep}
    return json.dumps({"action": "tweet", "payload": {"text": tag}, "x": deep}).encode(), "too_deep"


class ApiError(AssertionError):
    """The JSON API answered something the scenario did not expect."""


@dataclass
class ApiClient:
    """A bearer-token client of the JSON API that rides out daemon restarts."""

    base_url: str
    api_key: str
    http: httpx.AsyncClient
    token: str | None = None
    retries: int = 0

    async def _token(self) -> str:
        if self.token is None:
            response = await self.http.post(
                f"{self.base_url}/api/auth/token", json={"api_key": self.api_key}
            )
            if response.status_code != 200:
                raise httpx.TransportError(f"token: {response.status_code}")
            self.token = str(response.json()["access_token"])
        return self.token

    async def call(
        self, method: str, path: str, body: Any = None, *, idempotency_key: str | None = None
    ) -> httpx.Response:
        """One API call, retried through connection errors, 5xx and an expired token."""
        with anyio.fail_after(RETRY_BUDGET_S):
            for _ in range(int(RETRY_BUDGET_S / 0.2)):
                try:
                    headers = {"Authorization": f"Bearer {await self._token()}"}
                    if idempotency_key:
                        headers["Idempotency-Key"] = idempotency_key
                    response = await self.http.request(
                        method, self.base_url + path, json=body, headers=headers
                    )
                except httpx.TransportError:
                    self.retries += 1
                    await anyio.sleep(0.2)
                    continue
                if response.status_code == 401:
                    self.token = None
                elif response.status_code < 500:
                    return response
                self.retries += 1
                await anyio.sleep(0.2)
        raise AssertionError("unreachable: fail_after fires first")


@dataclass
class Moderator:
    """Approves every pending request it sees, through the JSON API, until told to stop."""

    api: ApiClient
    approved: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)

    async def sweep(self) -> int:
        """Approve one page of pending requests; how many were approved now."""
        listing = await self.api.call("GET", "/api/requests?state=pending&size=500")
        if listing.status_code != 200:
            raise ApiError(f"list: {listing.status_code} {listing.text}")
        done = 0
        for item in listing.json()["items"]:
            request_id = item["id"]
            # An approval binds to what was read: the detail carries the content hash.
            read = await self.api.call("GET", f"/api/requests/{request_id}")
            if read.status_code != 200:
                continue  # gone or moved on since the listing
            revision, content_hash = read.json()["revision"], read.json()["content_hash"]
            response = await self.api.call(
                "POST",
                f"/api/requests/{request_id}/approve",
                {"revision": revision, "content_hash": content_hash},
                idempotency_key=f"approve-{request_id}-{revision}",
            )
            if response.status_code == 200:
                self.approved.add(request_id)
                done += 1
            elif response.status_code == 409:
                # Already moved on (a retried call after a kill, or the writer beat us to it).
                self.approved.add(request_id)
            else:
                self.refused[request_id] = f"{response.status_code} {response.text[:200]}"
        return done
