"""The writer's moves in the shared request ledger, each logged once as a JSON line and counted."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from twitstack.core.logging import get_logger
from twitstack.writer.metrics import WriterMetrics
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.ledger_types import TransitionResult
from twitstack.writes.models import ModerationStatus, WriteRequest
from twitstack.writes.states import TERMINAL_STATES

S = ModerationStatus
_log = get_logger("twitstack.writer")
_NOTES_TTL_S = 35 * 24 * 3600  # outlives the ledger's default 30-day retention


class WriterJournal:
    """Compare-and-set transitions for the writer, plus its per-request notes.

    The notes (how many attempts were ambiguous, how many re-sends reconciliation allowed) live
    in a small hash next to the ledger so every replica sees them.
    """

    def __init__(
        self,
        ledger: RequestLedger,
        redis: Redis,
        metrics: WriterMetrics,
        *,
        actor: str,
        prefix: str = "twitstack:writer",
    ) -> None:
        self.ledger = ledger
        self._redis = redis
        self._metrics = metrics
        self.actor = actor
        self._prefix = prefix

    def _log_change(self, request: WriteRequest, state: S, reason: str, **fields: Any) -> None:
        # One line per state change; the payload (tweet or DM text) is never logged.
        _log.info(
            "writer.request_state_changed",
            request_id=request.id,
            account=request.account,
            action=str(request.action),
            state=state.value,
            reason=reason,
            **fields,
        )
        if state in TERMINAL_STATES or state is S.NEEDS_REVIEW:
            self._metrics.actions_processed.labels(action=str(request.action)).inc()

    def log_recorded(self, request: WriteRequest, reason: str) -> None:
        """Log a request the writer recorded in the ledger for the first time."""
        self._log_change(request, S(request.moderation), reason)

    async def move(
        self,
        request: WriteRequest,
        to_state: S,
        *,
        from_states: Collection[S],
        reason: str,
        result: Mapping[str, Any] | None = None,
        detail: str | None = None,
    ) -> TransitionResult:
        """Move `request` if it is in `from_states`; logs only when this call made the change."""
        stored = dict(result or {})
        if detail:
            stored["detail"] = detail[:500]
        moved = await self.ledger.transition(
            request.id,
            to_state,
            from_states=from_states,
            actor=self.actor,
            reason=reason,
            result=stored or None,
        )
        if moved.ok:
            self._log_change(request, to_state, reason, **({"result": stored} if stored else {}))
        return moved

    async def sending(self, request: WriteRequest) -> TransitionResult:
        """approved -> sending at `request.revision`: committed before any byte goes to X."""
        moved = await self.ledger.mark_sending(
            request.id, actor=self.actor, expected_revision=request.revision
        )
        if moved.ok:
            self._log_change(request, S.SENDING, "sending", attempt=moved.attempt)
        return moved

    async def later(
        self,
        request: WriteRequest,
        *,
        not_before: datetime,
        reason: str,
        from_states: Collection[S] = (S.SENDING, S.UNKNOWN),
    ) -> TransitionResult:
        """Back to approved, re-entering the queue through the schedule at `not_before`."""
        moved = await self.ledger.retry_later(
            request.id,
            not_before=not_before,
            actor=self.actor,
            reason=reason,
            from_states=from_states,
        )
        if moved.ok:
            self._log_change(request, S.APPROVED, reason, not_before=not_before.isoformat())
        return moved

    def _notes(self, request_id: str) -> str:
        return f"{self._prefix}:notes:{request_id}"

    async def note(self, request_id: str, field: str) -> int:
        """Count one more `field` event ("ambiguous", "resends") for the request."""
        key = self._notes(request_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, field, 1)
            pipe.expire(key, _NOTES_TTL_S)
            value, _ = await pipe.execute()
        return int(value)

    async def count(self, request_id: str, field: str) -> int:
        """How many `field` events were noted for the request."""
        value = await self._redis.hget(self._notes(request_id), field)
        return int(value) if value is not None else 0
