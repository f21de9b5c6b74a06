"""The request ledger in Redis: records, atomic state transitions and their event stream.

Every writer replica, the moderation service and auditors share it. Each request is one hash
(`keys.request(id)`) holding the current revision's message JSON and its state; each state has a
sorted-set index scored by creation time; every change appends an event to `keys.EVENTS` in the
same Lua call, so the state and its history never disagree.

Retention: terminal requests (rejected, executed, failed, expired) get an EXPIRE of
`retention_s` and a tombstone (`keys.tombstone(id)`, their final state) for that plus the clock
skew verifiers accept (spent nonces as long): while it lives the id is never recorded or sent
again, even if its hash is deleted. Each approval carries
a nonce that moving into `sending` spends (`keys.spent_approval`); leaving `approved` any other
way revokes it. `retention_s` must be at least the writers' `approval_max_age_s`, so that once
the ledger forgets an id, any approval for it is too old to verify. The event stream is capped
at about `events_maxlen` entries (MAXLEN ~), oldest dropped first.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from twitstack.core.logging import get_logger
from twitstack.writes import keys, scripts
from twitstack.writes.due_scan import MAX_ROUNDS, pick_due
from twitstack.writes.errors import PayloadError, WriteRequestError
from twitstack.writes.ledger_reads import LedgerReads
from twitstack.writes.ledger_types import (
    RecordResult,
    StoredRecord,
    TransitionResult,
    as_text,
    epoch_ms,
)
from twitstack.writes.models import (
    MAX_REVISION,
    Approval,
    ModerationStatus,
    WriteRequest,
    format_time,
    utcnow,
)
from twitstack.writes.quarantine import Quarantine, failure_reason
from twitstack.writes.states import EDITABLE_STATES, INITIAL_STATES
from twitstack.writes.transitions import (
    TERMINAL_NAMES,
    Change,
    TransitionScript,
    dispatch_for,
    parse_transition,
)
from twitstack.writes.validation import validate_payload
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
_log = get_logger("twitstack.writes.ledger")
DEFAULT_RETENTION_S = 30 * 24 * 3600
DEFAULT_EVENTS_MAXLEN = 500_000


def record_keys_and_args(
    request: WriteRequest, *, actor: str, reason: str, events_maxlen: int
) -> tuple[list[str], list[str | int | bytes], bool]:
    """KEYS, ARGV of `ledger_record` (lua/record_core.lua), and whether it will be scheduled.

    An approved request whose `not_before` is in the future goes into the schedule.
    """
    state = S(request.moderation)
    if state not in INITIAL_STATES:
        raise WriteRequestError(
            f"expected a new request in {', '.join(sorted(INITIAL_STATES))}, found {state}"
        )
    now = utcnow()
    due = request.not_before
    scheduled = state is S.APPROVED and due is not None and due > now
    redis_keys = [keys.request(request.id), keys.EVENTS, keys.SCHEDULE, keys.EXPIRY]
    args: list[str | int | bytes] = [
        request.id,
        encode_write_request(request),
        state.value,
        request.revision,
        epoch_ms(request.created_at),
        format_time(now),
        actor,
        reason,
        events_maxlen,
        keys.STATE_INDEX_PREFIX,
        epoch_ms(due) if scheduled and due is not None else "",
        "" if request.expires_at is None else epoch_ms(request.expires_at),
    ]
    return redis_keys, args, scheduled


class RequestLedger(LedgerReads):
    """Request state in Redis, changed only by compare-and-set transitions.

    A transition names the states it expects to find (and optionally the revision); if Redis holds
    something else, nothing changes and the TransitionResult says what was found. Moves the table
    in `states.TRANSITIONS` forbids raise InvalidTransitionError before touching Redis.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        retention_s: int = DEFAULT_RETENTION_S,
        events_maxlen: int = DEFAULT_EVENTS_MAXLEN,
        quarantine: Quarantine | None = None,
    ) -> None:
        if retention_s < 1 or events_maxlen < 1:
            raise ValueError("retention_s and events_maxlen must be positive")
        self._redis = redis
        self._quarantine = quarantine
        self.retention_s = retention_s
        self.events_maxlen = events_maxlen
        self._record = scripts.register(redis, "record")
        self._approve = scripts.register(redis, "approve")
        self._prune = scripts.register(redis, "prune_lapsed")
        self._transitions = TransitionScript(
            redis, retention_s=retention_s, events_maxlen=events_maxlen
        )

    async def record(
        self, request: WriteRequest, *, actor: str, reason: str = "recorded"
    ) -> RecordResult:
        """Store `request` in its `moderation` state, once; the same id again changes nothing.

        An approved request whose `not_before` is in the future is put in the schedule
        (`scheduled=True`): the writer must not execute it now.
        """
        redis_keys, args, scheduled = record_keys_and_args(
            request, actor=actor, reason=reason, events_maxlen=self.events_maxlen
        )
        raw = await self._record(keys=redis_keys, args=args)
        created = as_text(raw[0]) == "created"
        return RecordResult(
            request_id=request.id,
            created=created,
            state=S(as_text(raw[1])),
            revision=int(raw[2]),
            scheduled=created and scheduled,
        )

    @property
    def transitions(self) -> TransitionScript:
        """The transition script, for callers that fuse a transition with their own steps."""
        return self._transitions

    async def transition(
        self,
        request_id: str,
        to_state: ModerationStatus,
        *,
        from_states: Collection[ModerationStatus],
        actor: str,
        reason: str,
        expected_revision: int | None = None,
        result: Mapping[str, Any] | None = None,
        expected_attempt: int | None = None,
    ) -> TransitionResult:
        """Move `request_id` to `to_state` if it is in one of `from_states` (and at the revision,
        and at `expected_attempt` when given: the attempt a reconciler's verdict is about).

        `result` (e.g. {"tweet_id": "..."}) is stored on the record and carried by the event.
        Use the named helpers below for moves that carry more (sending, approve, edit, retry).
        """
        return await self._transitions.run(
            request_id,
            frozenset(from_states),
            S(to_state),
            actor=actor,
            reason=reason,
            expected_revision=expected_revision,
            change=Change(result=result),
            expected_attempt=expected_attempt,
        )

    async def mark_sending(
        self, request_id: str, *, actor: str, expected_revision: int | None = None
    ) -> TransitionResult:
        """approved -> sending, counting the attempt and its start time; commit before any I/O."""
        return await self._transitions.run(
            request_id,
            frozenset({S.APPROVED}),
            S.SENDING,
            actor=actor,
            reason="sending",
            expected_revision=expected_revision,
            change=Change(bump_attempt=True),
        )

    async def approve(
        self,
        request_id: str,
        approval: Approval,
        *,
        expected_revision: int,
        actor: str,
        reason: str = "approved",
        read: StoredRecord | None = None,
    ) -> TransitionResult:
        """pending|needs_review -> approved with `approval`, then hand it to the writer.

        `read` is what the approval was made from (else the record is read now): the move
        happens only if the stored request is still byte for byte that one, at
        `expected_revision`, in the same atomic step (status CONTENT_MISMATCH otherwise). The
        approved message is pushed onto `write_queue` in that step, or put in the schedule if
        its `not_before` is still ahead.
        """
        current = read or await self.read(request_id)
        if current is None:
            return TransitionResult.missing(request_id, S.APPROVED)
        approved = replace(current.record.request, moderation=S.APPROVED, approval=approval)
        dispatch, due = dispatch_for(approved.not_before)
        redis_keys, args = self._transitions.keys_and_args(
            request_id, frozenset({S.PENDING, S.NEEDS_REVIEW}), S.APPROVED, actor=actor,
            reason=reason, expected_revision=expected_revision,
            change=Change(new_request=approved, dispatch=dispatch, due=due),
        )  # fmt: skip
        raw = await self._approve(keys=redis_keys, args=[*args, current.raw_request])
        return parse_transition(raw, request_id, S.APPROVED)

    async def retry_later(
        self,
        request_id: str,
        *,
        not_before: datetime,
        actor: str,
        reason: str,
        from_states: Collection[ModerationStatus] = (S.SENDING, S.UNKNOWN),
        expected_attempt: int | None = None,
    ) -> TransitionResult:
        """Back to approved, to be sent again once `not_before` has passed (429, re-send).

        The request re-enters `write_queue` through the schedule; no worker sleeps on it.
        """
        dispatch, due = dispatch_for(not_before)
        return await self._transitions.run(
            request_id,
            frozenset(from_states),
            S.APPROVED,
            actor=actor,
            reason=reason,
            expected_revision=None,
            change=Change(dispatch=dispatch, due=due),
            expected_attempt=expected_attempt,
        )

    async def edit(
        self,
        request_id: str,
        payload: Mapping[str, Any],
        *,
        expected_revision: int,
        actor: str,
        account: str | None = None,
        reason: str = "edited",
    ) -> TransitionResult:
        """Replace the payload (and account): a new revision, back to pending, approval void.

        Raises PayloadError if the new payload breaks its action's rules, or if the new
        revision would pass MAX_REVISION (no reader could parse it any more).
        """
        if not 1 <= expected_revision < MAX_REVISION:
            raise PayloadError(
                "revision",
                f"expected a revision 1-{MAX_REVISION - 1} to edit, found {expected_revision}",
            )
        current = await self.get(request_id)
        if current is None:
            return TransitionResult.missing(request_id, S.PENDING)
        validate_payload(current.request.action, payload)
        edited = replace(
            current.request,
            payload=dict(payload),
            account=account or current.request.account,
            revision=expected_revision + 1,
            moderation=S.PENDING,
            approval=None,
        )
        return await self._transitions.run(
            request_id,
            EDITABLE_STATES,
            S.PENDING,
            actor=actor,
            reason=reason,
            expected_revision=expected_revision,
            change=Change(new_request=edited),
        )

    async def expire_due(self, *, now: datetime | None = None, limit: int = 100) -> int:
        """Move pending/approved requests whose `expires_at` has passed to expired; count them.

        Safe to run from every replica: each move is a compare-and-set. A record the move
        fails on for its data is quarantined (or logged, with no quarantine) and passed over;
        while a batch of `limit` had such records, the next batch behind them is taken in the
        same call (quarantined ones left out: due_scan), so they cannot hold back the rest.
        """
        due = epoch_ms(now or utcnow())

        async def read(offset: int, count: int) -> list[object]:
            return list(
                await self._redis.zrangebyscore(keys.EXPIRY, "-inf", due, start=offset, num=count)
            )

        expired = 0
        handled: set[str] = set()
        for _ in range(MAX_ROUNDS):
            pick = await pick_due(self._redis, read, want=limit, skip=handled)
            if pick.junk:
                # Junk ZADDed by hand names no request: drop it, or it stays due forever.
                await self._redis.zrem(keys.EXPIRY, *pick.junk)
            if not pick.ids:
                break
            handled.update(pick.ids)
            failed = 0
            for request_id in pick.ids:
                try:
                    result = await self.transition(
                        request_id,
                        S.EXPIRED,
                        from_states=(S.PENDING, S.APPROVED),
                        actor="ledger",
                        reason="expires_at_passed",
                    )
                except Exception as exc:
                    # A record whose data stops the move (a key of the wrong type, junk in
                    # its hash): quarantined, and the ids due after it still expire.
                    await self._quarantine_failure(request_id, exc)
                    failed += 1
                    continue
                expired += result.ok
                if not result.ok:
                    # In flight, under review or gone: the terminal move (if any) cleans it up.
                    await self._redis.zrem(keys.EXPIRY, request_id)
            if not failed:
                break  # nothing passed over: the rest waits for the next call, as before
        return expired

    async def _quarantine_failure(self, request_id: str, exc: Exception) -> None:
        if self._quarantine is not None:
            await self._quarantine.put_failure("record", request_id, exc)
            return
        if failure_reason(exc) is None:
            raise exc
        _log.warning("ledger.record_failed", request_id=request_id, error=repr(exc)[:300])

    async def prune_lapsed(self, *, now: datetime | None = None, limit: int = 500) -> int:
        """Drop terminal requests whose hash has lapsed from their state index; count them.

        Up to `limit` retention entries per call. A terminal transition prunes a few itself,
        except the writer's settle, which leaves them to its periodic call of this.
        """
        raw = await self._prune(
            keys=[keys.RETENTION],
            args=[
                epoch_ms(now or utcnow()),
                limit,
                keys.STATE_INDEX_PREFIX,
                keys.REQUEST_PREFIX,
                TERMINAL_NAMES,
            ],
        )
        return int(raw)
