"""Recording what waits on write_queue as pending, from any process (not only a writer).

Moderation runs this so requests can be reviewed and approved while every writer is down. It
is the writer intake's own ledger operation (`RequestLedger.record`, one atomic Lua call that
creates a record only if the id is new), so when a writer later takes the same message it finds
the record and never creates a second one. The message stays on write_queue for the writer.
"""

from __future__ import annotations

from collections import OrderedDict

from redis.asyncio import Redis

from twitstack.writes import keys
from twitstack.writes.errors import WireFormatError
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteRequest
from twitstack.writes.wire import decode_write_request

_PENDING_ONLY = frozenset({ModerationStatus.PENDING})
DEFAULT_SCAN = 1000  # messages looked at per sweep, from the head (the oldest)
_SEEN_MAX = 10_000  # ids remembered, so a long queue is not re-recorded on every sweep


class WaitingRecorder:
    """Records unrecorded pending messages of write_queue in the ledger."""

    def __init__(self, redis: Redis, ledger: RequestLedger, *, actor: str) -> None:
        self._redis = redis
        self._ledger = ledger
        self._actor = actor
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def sweep(self, *, limit: int = DEFAULT_SCAN) -> list[WriteRequest]:
        """Record the pending messages waiting now; returns those this call created."""
        created: list[WriteRequest] = []
        for raw in await self._redis.lrange(keys.WRITE_QUEUE, 0, limit - 1):
            try:
                # Only pending requests: an "approved" message's signature is the writer's to
                # verify, and a malformed one is the writer's to dead-letter with its reason.
                request = decode_write_request(
                    raw if isinstance(raw, bytes) else raw.encode(), allowed_states=_PENDING_ONLY
                )
            except WireFormatError:
                continue
            if request.id in self._seen:
                continue
            result = await self._ledger.record(request, actor=self._actor, reason="received")
            self._remember(request.id)
            if result.created:
                created.append(request)
        return created

    def _remember(self, request_id: str) -> None:
        self._seen[request_id] = None
        while len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
