"""The writer's moves in the shared request ledger, each logged once as a JSON line and counted."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from twitstack.core.logging import get_logger
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writer.send_steps import (
    BeginOutcome,
    BeginResult,
    Observation,
    PostClaim,
    QueueTicket,
    SendSteps,
)
from twitstack.writes import keys
from twitstack.writes.claims import PostClaims
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.ledger_types import TransitionResult, TransitionStatus
from twitstack.writes.models import ModerationStatus, WriteRequest
from twitstack.writes.states import TERMINAL_STATES
from twitstack.writes.thread_progress import ThreadLedger

S = ModerationStatus
_log = get_logger("twitstack.writer")
_WARN_STATES = frozenset({S.FAILED, S.EXPIRED, S.UNKNOWN, S.NEEDS_REVIEW})
_NOTES_OUTLIVE_S = 5 * 24 * 3600  # notes outlive the ledger record they are about


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
        budgets: RateLimitBudgets,
        *,
        actor: str,
    ) -> None:
        self.ledger = ledger
        self._redis = redis
        self._metrics = metrics
        self.actor = actor
        self._notes_ttl_s = ledger.retention_s + _NOTES_OUTLIVE_S
        self.steps = SendSteps(redis, ledger, budgets, on_batch=metrics.count_group_commit)
        self.claims = PostClaims(redis, retention_s=ledger.retention_s)
        self.threads = ThreadLedger(redis, events_maxlen=ledger.events_maxlen)

    def _log_change(self, request: WriteRequest, state: S, reason: str, **fields: Any) -> None:
        # One line per state change; the payload (tweet or DM text) is never logged. A request
        # that failed, expired, became uncertain or needs a human is logged as a warning.
        log_at = _log.warning if state in _WARN_STATES else _log.info
        log_at(
            "writer.request_state_changed",
            request_id=request.id,
            account=request.account,
            action=str(request.action),
            state=state.value,
            reason=reason,
            **fields,
        )
        if state in TERMINAL_STATES or state is S.NEEDS_REVIEW:
            self._metrics.child(self._metrics.actions_processed, str(request.action)).inc()

    def log_recorded(self, request: WriteRequest, reason: str) -> None:
        """Log a request the writer recorded, or moved to `request.moderation` in a fused step."""
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
        observation: Observation | None = None,
        ticket: QueueTicket | None = None,
        claim: PostClaim | None = None,
        expected_attempt: int | None = None,
    ) -> TransitionResult:
        """Move `request` if it is in `from_states`; logs only when this call made the change.

        `expected_attempt` (plain moves only): refuse if another attempt began since the
        caller read the record (a reconciler's verdict is about one attempt).

        With an `observation` (X's headers for a reserved call), a `ticket` (the message to
        ack) or a `claim` (the post X created, claimed for this request before the move),
        those are recorded in the same atomic call as the move.
        """
        stored = dict(result or {})
        if detail:
            stored["detail"] = detail[:500]
        if observation is None and ticket is None and claim is None:
            moved = await self.ledger.transition(
                request.id,
                to_state,
                from_states=from_states,
                actor=self.actor,
                reason=reason,
                result=stored or None,
                expected_attempt=expected_attempt,
            )
        else:
            if expected_attempt is not None:
                raise ValueError("expected_attempt is for plain moves only")
            settled = await self.steps.settle_claimed(
                request.id, to_state, from_states=from_states, actor=self.actor, reason=reason,
                result=stored or None, observation=observation, ticket=ticket, claim=claim,
            )  # fmt: skip
            moved, remaining = settled.moved, settled.remaining
            if claim is not None and settled.holder != request.id:
                # X's 201 is the truth: this request owns the post. The holder took it by a
                # read-back match that the matching rules should have excluded: say so loudly.
                self._metrics.claim_conflicts.inc()
                _log.error(
                    "writer.post_claim_conflict", request_id=request.id,
                    holder=settled.holder, post_id=claim.post_id,
                )  # fmt: skip
            if observation is not None and "window" in remaining:
                gauge = self._metrics.child(
                    self._metrics.rate_limit_remaining, observation.account, observation.endpoint
                )
                gauge.set(remaining["window"])
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

    async def flag_stranded(self, request: WriteRequest, reason: str) -> TransitionResult | None:
        """An approved request whose message is gone (dead-lettered): needs_review, not lost.

        Its trigger is gone, so it must not wait silently for ever as `approved`; if the crash
        came before the ledger held it at all, it is recorded for review.
        """
        if request.moderation is not S.APPROVED:
            return None
        moved = await self.move(request, S.NEEDS_REVIEW, from_states=[S.APPROVED], reason=reason)
        if moved.status is TransitionStatus.NOT_FOUND:
            held = replace(request, moderation=S.NEEDS_REVIEW, approval=None)
            recorded = await self.ledger.record(held, actor=self.actor, reason=reason)
            if recorded.created:
                self.log_recorded(held, reason)
        return moved

    async def begin_sending(
        self,
        request: WriteRequest,
        raw: bytes,
        endpoint: str,
        spend: tuple[list[str], list[str | int]],
        *,
        auto_approve: bool = False,
    ) -> BeginResult:
        """Record (once), reserve budgets, commit `sending` and charge it, for a verified
        approved message (`spend`: spend_core's keys and arguments).

        With `auto_approve` (require_approval = false) a pending message is moved to approved
        on the way, in the same call.
        """
        begun = await self.steps.begin(
            request, raw, endpoint, actor=self.actor, spend=spend, auto_approve=auto_approve
        )
        if begun.created:
            self.log_recorded(request, "received")
        if begun.auto_approved:
            self._log_change(request, S.APPROVED, "auto_approved")
        if begun.outcome is BeginOutcome.SENDING:
            self._log_change(request, S.SENDING, "sending", attempt=begun.attempt)
        return begun

    async def later(
        self,
        request: WriteRequest,
        *,
        not_before: datetime,
        reason: str,
        from_states: Collection[S] = (S.SENDING, S.UNKNOWN),
        expected_attempt: int | None = None,
    ) -> TransitionResult:
        """Back to approved, re-entering the queue through the schedule at `not_before`."""
        moved = await self.ledger.retry_later(
            request.id,
            not_before=not_before,
            actor=self.actor,
            reason=reason,
            from_states=from_states,
            expected_attempt=expected_attempt,
        )
        if moved.ok:
            self._log_change(request, S.APPROVED, reason, not_before=not_before.isoformat())
        return moved

    async def note(self, request_id: str, field: str) -> int:
        """Count one more `field` event ("ambiguous", "resends") for the request."""
        key = keys.writer_notes(request_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, field, 1)
            pipe.expire(key, self._notes_ttl_s)
            value, _ = await pipe.execute()
        return int(value)

    async def note_ambiguous(self, request_id: str, *, started: float, ended: float) -> None:
        """Count an ambiguous attempt and widen the request's attempt window (epoch s).

        `window_from` is the first uncertain attempt's start, `window_to` the latest one's end
        (inf for an attempt abandoned in `sending`): a post of any of them was created in
        between, which is reconciliation's time window.
        """
        key = keys.writer_notes(request_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "ambiguous", 1)
            pipe.hsetnx(key, "window_from", repr(started))
            pipe.hset(key, "window_to", repr(ended))
            pipe.expire(key, self._notes_ttl_s)
            await pipe.execute()

    async def attempt_window(self, request_id: str) -> tuple[float, float] | None:
        """(first start, latest end) of the request's uncertain attempts, if any."""
        start, end = await self._redis.hmget(
            keys.writer_notes(request_id), ["window_from", "window_to"]
        )
        if start is None or end is None:
            return None
        return float(start), float(end)

    async def count(self, request_id: str, field: str) -> int:
        """How many `field` events were noted for the request."""
        value = await self._redis.hget(keys.writer_notes(request_id), field)
        return int(value) if value is not None else 0
