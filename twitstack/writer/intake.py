"""Turning one `write_queue` message into a ledger record the writer may execute (or not)."""

from __future__ import annotations

from dataclasses import replace

from twitstack.writer.executor import RequestExecutor
from twitstack.writer.journal import WriterJournal
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.refusal import Refusal, log_refusal
from twitstack.writer.send_steps import QueueTicket
from twitstack.writes.ledger_types import LedgerRecord
from twitstack.writes.models import ModerationStatus, WriteRequest, utcnow

S = ModerationStatus


def fresh_record(request: WriteRequest) -> LedgerRecord:
    """The ledger record `record()` just created for `request`."""
    return LedgerRecord(
        request=request,
        attempt=0,
        sending_started_at=None,
        updated_at=utcnow(),
        last_actor="",
        last_reason="received",
        result=None,
    )


class RequestIntake:
    """Records new requests and decides whether a message leads to an execution.

    The ledger is the truth; a queue message is only a trigger. An "approved" message is
    believed only with a valid approval signature, and what is executed is always the ledger's
    stored copy, verified again by the executor just before `sending`.
    """

    def __init__(
        self,
        journal: WriterJournal,
        executor: RequestExecutor,
        metrics: WriterMetrics,
        *,
        require_approval: bool,
    ) -> None:
        self._journal = journal
        self._executor = executor
        self._metrics = metrics
        self._require_approval = require_approval

    async def handle(self, request: WriteRequest, ticket: QueueTicket) -> bool:
        """Record `request` and execute it if it is approved and due; True if it was acked."""
        if request.moderation is S.APPROVED:
            refusal = self._executor.approval_refusal(request)
            if refusal is not None:
                await self._hold_for_review(request, refusal)
                return False
            # Verified this very message: the fast path, unless the ledger holds it otherwise.
            fast = await self._executor.execute_message(request, ticket)
            if fast is not None:
                return fast
        elif request.moderation is S.PENDING and not self._require_approval:
            # The operator opted out of moderation (require_approval=false): record, approve
            # and begin sending in one step, unless the ledger holds it otherwise.
            fast = await self._executor.execute_message(request, ticket, auto_approve=True)
            if fast is not None:
                return fast
        accepted = await self.accept(request)
        if accepted is None:
            return False
        record, checked = accepted
        return await self._executor.execute(record, approval_checked=checked, ticket=ticket)

    async def _hold_for_review(self, request: WriteRequest, refusal: Refusal) -> None:
        # Someone who can write to Redis is not a moderator: keep it visible, never run it.
        log_refusal(self._metrics, request, refusal)
        held = replace(request, moderation=S.NEEDS_REVIEW, approval=None)
        reason = f"approval_{refusal.reason}"
        ledger = self._journal.ledger
        recorded = await ledger.record(held, actor=self._journal.actor, reason=reason)
        if recorded.created:
            self._journal.log_recorded(held, reason)
        elif recorded.state is S.APPROVED:
            # The ledger's own copy may be the tampered one (e.g. its not_before stripped):
            # if its approval does not verify either, a human must look, not the schedule.
            record = await ledger.get(request.id)
            if record is not None and record.state is S.APPROVED:
                stored = self._executor.approval_refusal(record.request)
                if stored is not None:
                    await self._executor.refuse(record.request, stored)

    async def accept(self, request: WriteRequest) -> tuple[LedgerRecord, bool] | None:
        """Record `request` once; the ledger record if it is approved and due now.

        The flag says whether that record's approval was already verified here (it is this very
        message), so the executor need not verify it twice. A refused approval is the caller's
        to check first (`handle` does).
        """
        ledger = self._journal.ledger
        actor = self._journal.actor
        recorded = await ledger.record(request, actor=actor, reason="received")
        if recorded.created:
            self._journal.log_recorded(request, "received")
        elif recorded.revision == 0:
            # Only a tombstone answers without a revision: the id already reached a final state.
            key = request.approval.key_id if request.approval is not None else None
            log_refusal(self._metrics, request, Refusal("tombstoned", key))
            return None
        if recorded.scheduled:
            return None
        if recorded.created and request.moderation is S.APPROVED:
            # The ledger now holds exactly this (already verified) message: no need to read it.
            return fresh_record(request), self._require_approval
        record = await ledger.get(request.id)
        if record is None:
            return None
        if record.state is S.PENDING and not self._require_approval:
            # The operator opted out of moderation for this pipeline (require_approval=false).
            moved = await self._journal.move(
                record.request, S.APPROVED, from_states=[S.PENDING], reason="auto_approved"
            )
            record = await ledger.get(request.id) if moved.ok else None
        if record is None or record.state is not S.APPROVED:
            return None
        return record, False
