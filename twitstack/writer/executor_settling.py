"""Settling X's answer to a request: the final move, or unknown, later, paused or failed."""

from __future__ import annotations

from collections.abc import Mapping

from twitstack.core.logging import get_logger
from twitstack.writer.executor_sending import ExecutorSending
from twitstack.writer.final_moves import final_move
from twitstack.writer.journal import WriterJournal
from twitstack.writer.media_step import MediaStep
from twitstack.writer.outcome import Outcome, OutcomeKind
from twitstack.writer.ratelimit import AccountPauses
from twitstack.writer.send_steps import Observation, PostClaim, QueueTicket
from twitstack.writer.x_calls import XCall, XReply
from twitstack.writes.models import ModerationStatus, WriteRequest

S = ModerationStatus
_log = get_logger("twitstack.writer.executor")
_PAUSING = {OutcomeKind.AUTH_FATAL, OutcomeKind.CONFIG_FATAL, OutcomeKind.ACCOUNT_PAUSED}


def _post_claim(call: XCall, result: Mapping[str, object] | None) -> PostClaim | None:
    """The post X just created for this call, claimed in the same call that records it."""
    kind = "dm" if call.endpoint == "dm.create" else "tweet"
    post_id = str((result or {}).get("dm_event_id" if kind == "dm" else "tweet_id") or "")
    return PostClaim(kind, post_id) if post_id else None


class ExecutorSettling(ExecutorSending):
    """A base of RequestExecutor: records X's answer in the ledger, pausing the account when
    the answer says an operator must act."""

    _journal: WriterJournal
    _pauses: AccountPauses
    _media: MediaStep

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
