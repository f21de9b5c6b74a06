"""Posting a thread: part after part, each a reply to the one before, each id in the ledger first.

The request moves approved -> sending once per attempt, as a single post does. Then for each
part not yet on X: reserve rate-limit room, commit the part as in flight (`begin_part`, before
its first byte), post it, claim its id and record it (`part_posted`) before the next part is
begun. An answer that is not a success settles the whole request the way a single post's does
(ambiguous -> unknown, 429 -> approved later, ...); the next attempt resumes at the first part
X does not have, after reconciliation decided about the one in flight. A permanent refusal
leaves the request failed with the ids of the parts that are live, for a human.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from twitstack.core.logging import get_logger
from twitstack.writer.crashpoints import crash_point
from twitstack.writer.journal import WriterJournal
from twitstack.writer.outcome import Outcome, OutcomeKind
from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writer.send_steps import Observation, QueueTicket
from twitstack.writer.spend_ledger import SpendLedger
from twitstack.writer.tokens import AccountAuth
from twitstack.writer.x_calls import XCall, XReply, call_for
from twitstack.writes.models import ModerationStatus, WriteRequest, utcnow
from twitstack.writes.spend import action_for
from twitstack.writes.thread import part_payload, thread_parts
from twitstack.writes.thread_progress import PartStatus, ThreadProgress

S = ModerationStatus
_log = get_logger("twitstack.writer.threads")


class PartSender(Protocol):
    """What the executor lends the thread steps: one call to X, and settling an answer."""

    async def send_part(
        self, request: WriteRequest, call: XCall, auth: AccountAuth
    ) -> tuple[XReply, Observation | None]: ...

    async def settle_part(
        self, request: WriteRequest, call: XCall, reply: XReply, observation: Observation | None,
        window: tuple[float, float],
    ) -> None: ...  # fmt: skip

    async def observe_part(
        self, request: WriteRequest, call: XCall, observation: Observation | None
    ) -> None: ...

    def retry_at(self, reset: float | None) -> datetime: ...


def part_call(request: WriteRequest, progress: ThreadProgress) -> XCall:
    """The X call of the first part X does not have yet (the last part's when X has all).

    With every part posted (a crash between the last part and `executed`, then a human's
    re-approval) the call only names the rate-limit bucket: nothing is sent.
    """
    index = min(progress.next_part, len(thread_parts(request.payload)) - 1)
    previous = progress.posted[index - 1] if index > 0 else None
    return call_for("tweet", part_payload(request.payload, index, previous))


class ThreadSteps:
    """Runs one attempt of a thread whose `sending` the executor has just committed."""

    def __init__(
        self,
        journal: WriterJournal,
        budgets: RateLimitBudgets,
        sender: PartSender,
        *,
        clock: Callable[[], float],
        stopping: Callable[[], bool] = lambda: False,
        spend: SpendLedger | None = None,
    ) -> None:
        self._journal = journal
        self._spend = spend
        self._budgets = budgets
        self._sender = sender
        self._clock = clock
        self._stopping = stopping

    async def progress(self, request_id: str) -> ThreadProgress:
        """The thread's progress in the ledger."""
        return await self._journal.threads.progress(request_id)

    async def run(
        self,
        request: WriteRequest,
        auth: AccountAuth,
        *,
        attempt: int,
        reserved: bool,
        ticket: QueueTicket | None,
    ) -> bool:
        """Post every remaining part; True if the final move acked `ticket`.

        `reserved` says the first call's rate-limit room is already held.
        """
        parts = len(thread_parts(request.payload))
        threads = self._journal.threads
        progress = await threads.progress(request.id)
        while progress.next_part < parts:
            index = progress.next_part
            call = part_call(request, progress)
            if index > 0 and self._stopping():
                # The service is stopping: end the attempt between parts (nothing in flight)
                # rather than hold the shutdown for the rest of the thread; it resumes here.
                if reserved:
                    await self._budgets.release(request.account, call.endpoint)
                await self._journal.later(
                    request, not_before=utcnow(), reason="thread_paused_for_stop",
                    from_states=[S.SENDING],
                )  # fmt: skip
                return False
            if not reserved:
                blocked = await self._budgets.reserve(request.account, call.endpoint)
                if blocked is not None:
                    await self._journal.later(
                        request, not_before=self._sender.retry_at(blocked),
                        reason="rate_limit_budget", from_states=[S.SENDING],
                    )  # fmt: skip
                    return False
            covered, reserved = reserved, False  # the executor charged the part it reserved
            begun = await threads.begin_part(
                request.id, index, attempt=attempt, actor=self._journal.actor
            )
            if begun is not PartStatus.OK:
                # Another attempt (or reconciliation) owns the thread now: leave it to them.
                await self._budgets.release(request.account, call.endpoint)
                _log.warning(
                    "writer.thread_part_not_begun", request_id=request.id, part=index + 1,
                    status=begun.value,
                )  # fmt: skip
                return False
            if not covered and self._spend is not None:
                # X bills every part; only the first the executor reserved passed the cap check.
                text = (call.body or {}).get("text")
                part = {"text": text} if isinstance(text, str) else {}
                await self._spend.record(request.account, action_for("tweet", part))
            crash_point("after_part_sending")
            started = self._clock()
            reply, observation = await self._sender.send_part(request, call, auth)
            outcome = reply.outcome
            if outcome.kind is not OutcomeKind.SUCCESS or not outcome.result_id:
                await self._fail(request, call, reply, observation, progress, parts,
                                 (started, self._clock()))  # fmt: skip
                return False
            crash_point("after_x_accepted")
            await self._sender.observe_part(request, call, observation)
            if not await self._posted(request, index, outcome.result_id):
                return False
            crash_point("after_part_posted")
            # What part_posted just recorded (OK or ALREADY: this very id, at this index).
            progress = ThreadProgress((*progress.posted, outcome.result_id))
        if reserved:  # every part was posted before this attempt: nothing was sent
            await self._budgets.release(request.account, part_call(request, progress).endpoint)
        moved = await self._journal.move(
            request, S.EXECUTED, from_states=[S.SENDING], reason="thread_posted",
            result=progress.to_result(parts), ticket=ticket,
        )  # fmt: skip
        crash_point("after_executed")
        return ticket is not None and moved.ok

    async def _posted(self, request: WriteRequest, index: int, tweet_id: str) -> bool:
        """Claim and record part `index`'s id; False when the thread must stop here."""
        holder = await self._journal.claims.claim("tweet", tweet_id, request.id)
        if holder != request.id:
            _log.error(
                "writer.post_claim_conflict", request_id=request.id, holder=holder,
                post_id=tweet_id,
            )  # fmt: skip
        status, found = await self._journal.threads.part_posted(
            request.id, index, tweet_id, actor=self._journal.actor
        )
        if status in (PartStatus.OK, PartStatus.ALREADY):
            _log.info(
                "writer.thread_part_posted", request_id=request.id, part=index + 1,
                tweet_id=tweet_id,
            )  # fmt: skip
            return True
        # X's 201 is the truth, but the ledger holds something else: a human must look.
        _log.error(
            "writer.thread_part_unrecorded", request_id=request.id, part=index + 1,
            tweet_id=tweet_id, status=status.value, recorded=found,
        )  # fmt: skip
        await self._journal.move(
            request, S.NEEDS_REVIEW, from_states=[S.SENDING],
            reason=f"thread_part_unrecorded:{status.value}",
            result={"unrecorded_part": index + 1, "unrecorded_tweet_id": tweet_id},
        )  # fmt: skip
        return False

    async def _fail(
        self,
        request: WriteRequest,
        call: XCall,
        reply: XReply,
        observation: Observation | None,
        progress: ThreadProgress,
        parts: int,
        window: tuple[float, float],
    ) -> None:
        """Settle an answer other than success for the part in flight."""
        outcome = reply.outcome
        kind = outcome.kind
        if kind is OutcomeKind.SUCCESS:  # a 2xx without an id: X may have posted it
            kind = OutcomeKind.AMBIGUOUS
            outcome = Outcome(kind, "success_without_id", outcome.status)
            reply = XReply(outcome, reply.headers, reply.elapsed_s)
        if kind not in (OutcomeKind.PERMANENT, OutcomeKind.NEEDS_REVIEW):
            await self._sender.settle_part(request, call, reply, observation, window)
            return
        await self._sender.observe_part(request, call, observation)
        if outcome.is_duplicate and await self._journal.count(request.id, "ambiguous") > 0:
            # An earlier attempt of this part may be the post X calls a duplicate: find it.
            await self._journal.move(
                request, S.UNKNOWN, from_states=[S.SENDING], reason="duplicate_after_ambiguous"
            )
            return
        to_state = S.FAILED if kind is OutcomeKind.PERMANENT else S.NEEDS_REVIEW
        result: Mapping[str, Any] = {
            **progress.to_result(parts),
            "failed_part": progress.next_part + 1,
        }
        await self._journal.move(
            request, to_state, from_states=[S.SENDING], reason=outcome.reason, result=result,
            detail=outcome.detail,
        )  # fmt: skip
        if progress.posted:
            _log.error(
                "writer.thread_partly_posted", request_id=request.id,
                parts_posted=len(progress.posted), parts=parts, reason=outcome.reason,
            )  # fmt: skip
