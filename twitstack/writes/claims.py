"""Post-id claims: one request per tweet or DM id, ever, so two records never share one post.

A writer claims the id X returned before it records `executed`; reconciliation claims the id it
found before it records it. A claim is first-come and never moves to another request; it is
kept as long as the ledger keeps terminal records (retention), so a late reconciliation cannot
take a post whose owner was recorded weeks ago either.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from twitstack.writes.ledger_types import as_text

CLAIM_PREFIX = "writes:post_claim:"


def claim_key(kind: str, post_id: str) -> str:
    """The key of the claim on one post (`kind` "tweet" or "dm": their ids are separate)."""
    return f"{CLAIM_PREFIX}{kind}:{post_id}"


class PostClaims:
    """First-come claims on post ids, shared by every replica through Redis."""

    def __init__(self, redis: Redis, *, retention_s: int) -> None:
        self._redis = redis
        self._retention_s = max(int(retention_s), 1)

    async def claim(self, kind: str, post_id: str, request_id: str) -> str:
        """Claim `post_id` for `request_id`; returns the holder (== request_id when it won)."""
        # SET NX GET (Redis 7): takes a free claim, or answers the holder and leaves it be.
        key = claim_key(kind, post_id)
        try:
            holder = await self._redis.set(key, request_id, nx=True, get=True, ex=self._retention_s)
        except ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            # A key of another type (written by hand) names no request: no claim. Dropped and
            # taken, or each sweep would fail at this post for ever.
            await self._redis.delete(key)
            holder = await self._redis.set(key, request_id, nx=True, get=True, ex=self._retention_s)
        return as_text(holder) if isinstance(holder, bytes | str) else request_id

    async def holders(self, kind: str, post_ids: Sequence[str]) -> dict[str, str]:
        """The request holding each claimed id among `post_ids` (unclaimed ids are absent)."""
        if not post_ids:
            return {}
        values = await self._redis.mget([claim_key(kind, post_id) for post_id in post_ids])
        return {
            post_id: as_text(value)
            for post_id, value in zip(post_ids, values, strict=True)
            if value is not None
        }
