"""Executing one approved request: checks, budget, `sending` committed, one call to X, outcome."""

from __future__ import annotations

import random
from collections.abc import Callable

from twitstack.core.sections.writer import WriterSettings
from twitstack.writer.crashpoints import crash_point
from twitstack.writer.executor_thread_hooks import ExecutorThreadHooks
from twitstack.writer.journal import WriterJournal
from twitstack.writer.media_step import MediaStep
from twitstack.writer.media_upload import MediaUploader
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.outcome import OutcomeKind
from twitstack.writer.ratelimit import AccountPauses, RateLimitBudgets
from twitstack.writer.refusal import Refusal, log_refusal
from twitstack.writer.send_steps import BeginOutcome, QueueTicket
from twitstack.writer.spend_ledger import SpendLedger
from twitstack.writer.thread_steps import ThreadSteps, part_call
from twitstack.writer.tokens import AccountAuth, CredentialsError, TokenManager
from twitstack.writer.x_calls import XCall, call_for
from twitstack.writer.xapi_client import XApiClient
from twitstack.writes.ledger_types import LedgerRecord, TransitionStatus
from twitstack.writes.media import attachments_in
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest, utcnow
from twitstack.writes.signing import ApprovalVerifier
from twitstack.writes.spend import BUDGET_PAUSE

S = ModerationStatus
# The ledger refused to spend the approval: used before, revoked, or the id is finished.
NO_KEYS_REFUSAL = "no_approval_keys_configured"
_SPEND_REFUSED = {TransitionStatus.SPENT, TransitionStatus.TOMBSTONED}


class RequestExecutor(ExecutorThreadHooks):
    """Runs the effectively-once protocol for one approved request (research §2.3)."""

    def __init__(
        self,
        journal: WriterJournal,
        client: XApiClient,
        tokens: TokenManager,
        budgets: RateLimitBudgets,
        pauses: AccountPauses,
        verifier: ApprovalVerifier | None,
        settings: WriterSettings,
        metrics: WriterMetrics,
        *,
        clock: Callable[[], float],
        spend: SpendLedger,
        rng: random.Random | None = None,
        media: MediaUploader | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._journal = journal
        self._client = client
        self._tokens = tokens
        self._budgets = budgets
        self._pauses = pauses
        self._verifier = verifier
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._spend = spend
        self._rng = rng or random.Random()
        self._media = MediaStep(
            media, client, tokens, journal, metrics,
            later_at=lambda retry_at: self._after_reset(retry_at)
            if retry_at is not None else self._at(clock() + settings.transient_retry_s),
            clock=clock, spend=spend,
        )  # fmt: skip
        self._threads = ThreadSteps(
            journal, budgets, self, clock=clock, stopping=stopping, spend=spend
        )

    def approval_refusal(self, request: WriteRequest) -> Refusal | None:
        """Why `request` may not be executed on its approval, or None when it may."""
        if not self._settings.require_approval:
            return None
        if self._verifier is None:
            return Refusal(NO_KEYS_REFUSAL, None)
        check = self._verifier.check(request)
        return None if check.ok else Refusal(str(check.reason), check.key_id)

    async def execute_message(
        self, request: WriteRequest, ticket: QueueTicket, *, auto_approve: bool = False
    ) -> bool | None:
        """The fast path for an approved message whose approval the caller just verified.

        With `auto_approve` (require_approval = false), for a pending message: it is recorded
        and moved pending -> approved (auto_approved) in the same call that commits `sending`.

        Records it, reserves budget and commits `sending` in one call, then calls X and
        settles with the ack in another. None when the message needs the general path
        (`execute` on the ledger's record): it is expired, not yet due, for an unknown or
        paused account, has no usable credentials, or the ledger holds it differently.
        Otherwise True when the message was acked along with the settle.
        """
        now = utcnow()
        if request.action == WriteAction.THREAD:
            return None  # a thread resumes from the ledger's progress: the general path
        if (request.expires_at is not None and now >= request.expires_at) or (
            request.not_before is not None and request.not_before > now
        ):
            return None
        if self._settings.account(request.account) is None:
            return None
        if attachments_in(request.payload):
            return None  # uploads first, while still approved: the general path does that
        pause = await self._pauses.paused(request.account)
        if pause is not None and pause.reason != BUDGET_PAUSE:
            return None
        try:
            auth = await self._tokens.auth_for(request.account)
        except CredentialsError:
            return None
        call = call_for(str(request.action), request.payload)
        charge = self._charge_for(request)
        begun = await self._journal.begin_sending(
            request, ticket.raw, call.endpoint, self._spend.keys_and_args(charge),
            auto_approve=auto_approve,
        )  # fmt: skip
        if begun.spend_reply:
            sent = begun.outcome is BeginOutcome.SENDING
            await self._spend.answered(charge, begun.spend_reply, charged=sent)
        if begun.outcome is BeginOutcome.BUDGET:
            await self._hold_for_budget(request, begun.blocked_until)
            return False
        if begun.outcome is BeginOutcome.DIFFERS:
            return None
        if begun.outcome is BeginOutcome.REFUSED:
            await self.refuse(request, self._spend_refusal(request, str(begun.refused)))
            return False
        if begun.outcome is BeginOutcome.BLOCKED:
            await self._journal.later(
                request, not_before=self._after_reset(begun.blocked_until),
                reason="rate_limit_budget", from_states=[S.APPROVED],
            )  # fmt: skip
            return False
        if begun.outcome is not BeginOutcome.SENDING:
            return False  # another worker or replica got there first
        crash_point("after_sending")
        return await self._call_and_settle(request, call, auth, ticket)

    async def execute(
        self,
        record: LedgerRecord,
        *,
        approval_checked: bool = False,
        ticket: QueueTicket | None = None,
    ) -> bool:
        """Take an `approved` request as far as it can go now; never sleeps on a rate limit.

        `approval_checked` skips verifying a signature the caller verified on this same record.
        With a `ticket`, the final move acks that message too; returns True if it did.
        """
        request = record.request
        if record.state is not S.APPROVED:
            return False
        if record.is_expired(utcnow()):
            await self._journal.move(request, S.EXPIRED, from_states=[S.APPROVED], reason="expired")
            return False
        if request.not_before is not None and request.not_before > utcnow():
            await self._journal.later(
                request,
                not_before=request.not_before,
                reason="not_before",
                from_states=[S.APPROVED],
            )
            return False
        refusal = None if approval_checked else self.approval_refusal(request)
        if refusal is not None:
            await self.refuse(request, refusal)
            return False
        if self._settings.account(request.account) is None:
            # approved -> failed is no move of the state machine; nothing was sent, and a
            # human can fix the configuration and approve again.
            await self._journal.move(
                request, S.NEEDS_REVIEW, from_states=[S.APPROVED], reason="unknown_account"
            )
            return False
        pause = await self._pauses.paused(request.account)
        # A budget pause is rechecked by the reservation itself (a raised cap lets it go).
        if pause is not None and pause.reason != BUDGET_PAUSE:
            until = pause.until or self._clock() + self._settings.paused_recheck_s
            await self._journal.later(
                request, not_before=self._at(until), reason=f"account_paused:{pause.reason}",
                from_states=[S.APPROVED],
            )  # fmt: skip
            return False
        payload = await self._media.payload_for(request, self._credentials_failed)
        if payload is None:
            return False
        thread = request.action == WriteAction.THREAD
        if thread:
            call = part_call(request, await self._threads.progress(request.id))
        else:
            call = call_for(str(request.action), payload)
        charge = self._charge_for(request, call)
        reserved = await self._budgets.reserve_spending(
            request.account, call.endpoint, self._spend.keys_and_args(charge)
        )
        # Counted once `sending` is committed: before that the charge may still be refunded.
        await self._spend.answered(charge, reserved.spend_reply, charged=False)
        if reserved.budget_until is not None:
            await self._hold_for_budget(request, reserved.budget_until)
            return False
        if reserved.blocked_until is not None:
            await self._journal.later(
                request, not_before=self._after_reset(reserved.blocked_until),
                reason="rate_limit_budget", from_states=[S.APPROVED],
            )  # fmt: skip
            return False
        refund = self._spend.refund_keys_and_args(charge)
        try:
            auth = await self._tokens.auth_for(request.account)
        except CredentialsError as exc:
            await self._budgets.release(request.account, call.endpoint, refund)
            await self._credentials_failed(request, exc)
            return False
        started = await self._journal.sending(request)
        if not started.ok:
            await self._budgets.release(request.account, call.endpoint, refund)
            if started.status in _SPEND_REFUSED:
                await self.refuse(request, self._spend_refusal(request, started.status.value))
            return False  # another worker or replica got there first
        self._spend.counted(charge)
        crash_point("after_sending")
        if thread:
            return await self._threads.run(
                request, auth, attempt=started.attempt, reserved=True, ticket=ticket
            )
        return await self._call_and_settle(request, call, auth, ticket)

    async def _hold_for_budget(self, request: WriteRequest, until: float | None) -> None:
        """A spend cap holds the request: look again at the period's end or after a recheck
        interval, whichever is first (an admin may raise the cap meanwhile)."""
        recheck = self._clock() + self._settings.paused_recheck_s
        await self._journal.later(
            request, not_before=self._at(min(until or recheck, recheck)), reason="budget",
            from_states=[S.APPROVED],
        )  # fmt: skip

    async def _call_and_settle(
        self, request: WriteRequest, call: XCall, auth: AccountAuth, ticket: QueueTicket | None
    ) -> bool:
        started = self._clock()
        reply, observation = await self._send(request, call, auth)
        window = (started, self._clock())
        if reply.outcome.kind is OutcomeKind.SUCCESS:
            crash_point("after_x_accepted")
        acked = await self._settle(request, call, reply, observation, ticket, window)
        crash_point("after_executed")
        return acked

    async def _credentials_failed(self, request: WriteRequest, exc: CredentialsError) -> None:
        await self._pause(request.account, "credentials", str(exc))
        await self._journal.later(
            request, not_before=self._at(self._clock() + self._settings.paused_recheck_s),
            reason="credentials", from_states=[S.APPROVED],
        )  # fmt: skip

    def _spend_refusal(self, request: WriteRequest, reason: str) -> Refusal:
        key = request.approval.key_id if request.approval is not None else None
        return Refusal(reason, key)

    async def refuse(self, request: WriteRequest, refusal: Refusal) -> None:
        """Count and log a refused approval, and hold the approved request for a human."""
        log_refusal(self._metrics, request, refusal)
        await self._journal.move(
            request, S.NEEDS_REVIEW, from_states=[S.APPROVED], reason=f"approval_{refusal.reason}"
        )
