"""Outcomes settled by one ledger move out of `sending`, and the state and result each records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twitstack.writer.outcome import Outcome, OutcomeKind
from twitstack.writer.x_calls import XCall
from twitstack.writes.models import ModerationStatus, WriteRequest

S = ModerationStatus
# A duplicate-content PERMANENT is the exception: whether it failed depends on earlier attempts.
_ONE_MOVE = {
    OutcomeKind.SUCCESS,
    OutcomeKind.ALREADY_GONE,
    OutcomeKind.PERMANENT,
    OutcomeKind.NEEDS_REVIEW,
}
_WITH_DETAIL = {OutcomeKind.PERMANENT, OutcomeKind.NEEDS_REVIEW}


@dataclass(frozen=True, slots=True)
class FinalMove:
    """The move that settles an attempt: target state, reason, result and X's detail."""

    to_state: ModerationStatus
    reason: str
    result: dict[str, Any] | None = None
    detail: str | None = None


def final_move(request: WriteRequest, call: XCall, outcome: Outcome) -> FinalMove | None:
    """The one move that settles `outcome`, or None when settling it takes more than a move.

    Such outcomes can carry X's headers and the queue ack in the same Redis call.
    """
    kind = outcome.kind
    if kind not in _ONE_MOVE or outcome.is_duplicate:
        return None
    detail = outcome.detail if kind in _WITH_DETAIL else None
    if kind is OutcomeKind.SUCCESS:
        return FinalMove(S.EXECUTED, outcome.reason, _result(call, outcome))
    if kind is OutcomeKind.ALREADY_GONE:
        gone = {"tweet_id": str(request.payload.get("tweet_id")), "already_gone": True}
        return FinalMove(S.EXECUTED, "already_gone", gone)
    if kind is OutcomeKind.PERMANENT:
        return FinalMove(S.FAILED, outcome.reason, detail=detail)
    return FinalMove(S.NEEDS_REVIEW, outcome.reason, detail=detail)


def _result(call: XCall, outcome: Outcome) -> dict[str, Any]:
    if call.endpoint == "dm.create":
        return {"dm_event_id": outcome.result_id or ""}
    if call.endpoint == "tweets.delete":
        return {"tweet_id": call.path.rsplit("/", 1)[-1], "deleted": "true"}
    return {"tweet_id": outcome.result_id or ""}
