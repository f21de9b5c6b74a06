"""Executing one approved request: checks, budget, `sending` committed, one call to X, outcome."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import stamina

from twitstack.core.logging import get_logger
from twitstack.core.sections.writer import WriterSettings
from twitstack.writer.crashpoints import crash_point
from twitstack.writer.final_moves import final_move
from twitstack.writer.journal import WriterJournal
from twitstack.writer.media_step import MediaStep
from twitstack.writer.media_upload import MediaUploader
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.outcome import Outcome, OutcomeKind
from twitstack.writer.ratelimit import AccountPauses, RateLimitBudgets
from twitstack.writer.reachability import count_reachability, error_class
from twitstack.writer.refusal import Refusal, log_refusal
from twitstack.writer.retry_hooks import operation_for
from twitstack.writer.send_steps import BeginOutcome, Observation, PostClaim, QueueTicket
from twitstack.writer.spend_ledger import Charge, SpendLedger
from twitstack.writer.thread_steps import ThreadSteps, part_call
from twitstack.writer.tokens import AccountAuth, CredentialsError, TokenManager
from twitstack.writer.xapi_client import XApiClient, XCall, XReply, call_for
from twitstack.writes.ledger_types import LedgerRecord, TransitionStatus
from twitstack.writes.media import attachments_in
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest, utcnow
from twitstack.writes.signing import ApprovalVerifier
from twitstack.writes.spend import BUDGET_PAUSE, action_for

S = ModerationStatus
_log = get_logger("twitstack.writer.executor")
_PAUSING = {OutcomeKind.AUTH_FATAL, OutcomeKind.CONFIG_FATAL, OutcomeKind.ACCOUNT_PAUSED}
# The ledger refused to spend the approval: used before, revoked, or the id is finished.
NO_KEYS_REFUSAL = "no_approval_keys_configured"
_SPEND_REFUSED = {TransitionStatus.SPENT, TransitionStatus.TOMBSTONED}


def _counts_against_account(outcome: Outcome) -> bool:
    """False for answers X gives before it knows the user (a 401, a configuration 403).

    Their rate-limit headers describe another bucket (a 401's are the anonymous bucket's):
    adopting them would show a fresh budget while the account's window is exhausted.
    """
    if outcome.status == 401:
        return False
    return not (outcome.status == 403 and outcome.kind is OutcomeKind.CONFIG_FATAL)


def _post_claim(call: XCall, result: Mapping[str, object] | None) -> PostClaim | None:
    """The post X just created for this call, claimed in the same call that records it."""
    kind = "dm" if call.endpoint == "dm.create" else "tweet"
    post_id = str((result or {}).get("dm_event_id" if kind == "dm" else "tweet_id") or "")
    return PostClaim(kind, post_id) if post_id else None


class _TransientError(Exception):
    """Carries a retryable outcome through stamina's retry loop."""

    def __init__(self, reply: XReply, action: str) -> None:
        self.reply = reply
        self.error_class = error_class(reply.outcome)  # what writer.retry_scheduled names
        self.operation = operation_for(action)  # writer_retries_total's label


class RequestExecutor:
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

    def _at(self, epoch_s: float) -> datetime:
        # X's reset times are on the writer's clock; the ledger schedules in UTC datetimes.
        return datetime.fromtimestamp(epoch_s, UTC)

    def _after_reset(self, reset: float | None) -> datetime:
        base = reset if reset is not None else self._clock() + 60.0  # X's own fallback
        jitter = self._rng.uniform(0, self._settings.rate_limit_jitter_s)
        return self._at(base + self._settings.rate_limit_margin_s + jitter)

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

    def _charge_for(self, request: WriteRequest, call: XCall | None = None) -> Charge:
        # A thread is charged part by part: this call's part (the thread steps charge the rest).
        if call is not None and request.action == WriteAction.THREAD:
            return self._spend.charge(request.account, action_for("tweet", call.body or {}))
        return self._spend.charge(request.account, action_for(str(request.action), request.payload))

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

    async def _once(
        self, request: WriteRequest, call: XCall, auth: AccountAuth, *, reserved: bool
    ) -> XReply:
        """One call to X, counted; its headers are left for the caller to record.

        Headers of an answer that did not count against the account's window are dropped, so
        the caller gives the reservation back instead of recording them.
        """
        reply = await self._client.execute(call, auth=auth.auth, auth_kind=auth.kind)
        if not _counts_against_account(reply.outcome):
            reply = XReply(reply.outcome, {}, reply.elapsed_s)
        action = str(request.action)
        self._metrics.request_latency.labels(action=action).observe(reply.elapsed_s)
        outcome = reply.outcome
        self._metrics.outcomes.labels(action=action, kind=outcome.kind, reason=outcome.reason).inc()
        count_reachability(self._metrics, outcome, now=self._clock())
        return reply

    async def _observe(
        self, request: WriteRequest, call: XCall, headers: Mapping[str, str], *, reserved: bool
    ) -> None:
        """Record X's rate-limit headers now (or give back the reservation when none came)."""
        remaining: dict[str, int] = {}
        if headers:
            remaining = await self._budgets.observe(
                request.account, call.endpoint, headers, reserved=reserved
            )
        elif reserved:
            await self._budgets.release(request.account, call.endpoint)
        if "window" in remaining:
            self._metrics.rate_limit_remaining.labels(
                account=request.account, endpoint=call.endpoint
            ).set(remaining["window"])

    async def _send(
        self, request: WriteRequest, call: XCall, auth: AccountAuth
    ) -> tuple[XReply, Observation | None]:
        """X's final answer, and its reserved headers when they still have to be recorded."""
        reply = await self._once(request, call, auth, reserved=True)
        kind = reply.outcome.kind
        if kind is not OutcomeKind.AUTH_REFRESH and kind is not OutcomeKind.TRANSIENT_RETRY:
            # The usual case: recorded together with the settle, in one round trip.
            return reply, Observation(request.account, call.endpoint, reply.headers)
        await self._observe(request, call, reply.headers, reserved=True)
        if reply.outcome.kind is OutcomeKind.AUTH_REFRESH:
            # X refused the token, so nothing was created: refresh once and try once more.
            try:
                fresh = await self._tokens.refresh(request.account, auth.access_token)
            except CredentialsError:
                return reply, None
            reply = await self._once(request, call, fresh, reserved=False)
            await self._spend.record(request.account, self._charge_for(request).action)
            await self._observe(request, call, reply.headers, reserved=False)
            if reply.outcome.kind is OutcomeKind.AUTH_REFRESH:
                detail = reply.outcome.detail or "Unauthorized"
                await self._tokens.reconnect_needed(
                    request.account, f"X answered 401 to a freshly refreshed token: {detail}"
                )
                return XReply(
                    Outcome(OutcomeKind.AUTH_FATAL, "unauthorized_after_refresh", 401),
                    reply.headers,
                    reply.elapsed_s,
                ), None
        if reply.outcome.kind is not OutcomeKind.TRANSIENT_RETRY:
            return reply, None
        return await self._retry_transient(request, call, auth, reply), None

    async def _retry_transient(
        self, request: WriteRequest, call: XCall, auth: AccountAuth, first: XReply
    ) -> XReply:
        # Only definitely-unsent or idempotent calls are TRANSIENT_RETRY (see outcome.py), so
        # sending again cannot duplicate anything. Total time is bounded by stamina's timeout.
        last = first
        if self._settings.transient_attempts <= 1:
            return last
        try:
            async for attempt in stamina.retry_context(
                on=_TransientError,
                attempts=self._settings.transient_attempts - 1,
                timeout=self._settings.transient_retry_s * 4,
                wait_max=self._settings.transient_retry_s,
            ):
                with attempt:
                    last = await self._once(request, call, auth, reserved=False)
                    await self._spend.record(request.account, self._charge_for(request).action)
                    await self._observe(request, call, last.headers, reserved=False)
                    if last.outcome.kind is OutcomeKind.TRANSIENT_RETRY:
                        raise _TransientError(last, str(request.action))
        except _TransientError as exc:
            return exc.reply
        return last

    async def _pause(self, account: str, reason: str, detail: str | None) -> None:
        await self._pauses.pause(account, reason)
        self._metrics.account_paused.labels(account=account).set(1)
        # An operator must act (top up credits, fix permissions, re-authorise): say so loudly.
        _log.error("writer.account_paused", account=account, reason=reason, detail=detail)

    async def _settle(
        self,
        request: WriteRequest,
        call: XCall,
        reply: XReply,
        observation: Observation | None,
        ticket: QueueTicket | None,
        attempt: tuple[float, float],
    ) -> bool:
        """Record X's answer; True if the message was acked in the same call.

        `attempt` is (start, end) of this attempt on the writer's clock.
        """
        outcome = reply.outcome
        kind = outcome.kind
        sending = [S.SENDING]
        if await self._media.cached_ids_refused(request, outcome):
            if observation is not None:
                await self._observe(request, call, observation.headers, reserved=True)
            return False
        move = final_move(request, call, outcome)
        if move is not None:
            claim = None
            if move.to_state is S.EXECUTED and call.endpoint != "tweets.delete":
                claim = _post_claim(call, move.result)
            await self._journal.move(
                request, move.to_state, from_states=sending, reason=move.reason,
                result=move.result, detail=move.detail, observation=observation, ticket=ticket,
                claim=claim,
            )  # fmt: skip
            return ticket is not None
        if observation is not None:
            await self._observe(request, call, observation.headers, reserved=True)
        if kind is OutcomeKind.PERMANENT:  # duplicate content
            await self._duplicate(request, outcome)
        elif kind is OutcomeKind.AMBIGUOUS:
            started, ended = attempt
            await self._journal.note_ambiguous(request.id, started=started, ended=ended)
            await self._journal.move(
                request, S.UNKNOWN, from_states=sending, reason=f"ambiguous:{outcome.reason}"
            )
        elif kind is OutcomeKind.WAIT_UNTIL:
            if outcome.retry_at is None:
                await self._budgets.exhaust_until(
                    request.account, call.endpoint, self._clock() + 60
                )
            await self._journal.later(
                request, not_before=self._after_reset(outcome.retry_at), reason=outcome.reason
            )
        elif kind in _PAUSING:
            await self._pause(request.account, outcome.reason, outcome.detail)
            recheck = self._at(self._clock() + self._settings.paused_recheck_s)
            await self._journal.later(request, not_before=recheck, reason=outcome.reason)
        else:  # TRANSIENT_RETRY after the inline retries, or AUTH_REFRESH with no refresh
            retry = self._at(self._clock() + self._settings.transient_retry_s)
            await self._journal.later(request, not_before=retry, reason=outcome.reason)
        return False

    async def _duplicate(self, request: WriteRequest, outcome: Outcome) -> None:
        if await self._journal.count(request.id, "ambiguous") > 0:
            # An earlier attempt of this very request may have been posted: find it.
            await self._journal.move(
                request, S.UNKNOWN, from_states=[S.SENDING], reason="duplicate_after_ambiguous"
            )
            return
        await self._journal.move(
            request, S.FAILED, from_states=[S.SENDING], reason="duplicate_content",
            detail=outcome.detail,
        )  # fmt: skip

    # What the thread steps borrow (thread_steps.PartSender): one part is one call to X.
    async def send_part(
        self, request: WriteRequest, call: XCall, auth: AccountAuth
    ) -> tuple[XReply, Observation | None]:
        """One part's call to X, with the token refresh and transient retries of any post."""
        return await self._send(request, call, auth)

    async def settle_part(
        self, request: WriteRequest, call: XCall, reply: XReply, observation: Observation | None,
        window: tuple[float, float],
    ) -> None:  # fmt: skip
        """Settle a part's answer that is neither a success nor a refusal, as a post's."""
        await self._settle(request, call, reply, observation, None, window)

    async def observe_part(
        self, request: WriteRequest, call: XCall, observation: Observation | None
    ) -> None:
        """Record a part's rate-limit headers (its reservation is spent either way)."""
        if observation is not None:
            await self._observe(request, call, observation.headers, reserved=True)

    def retry_at(self, reset: float | None) -> datetime:
        """When to try again after a rate-limit reset (margin and jitter added)."""
        return self._after_reset(reset)
