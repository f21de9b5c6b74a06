"""The request state machine: which moves are allowed, and which states are final."""

from __future__ import annotations

from collections.abc import Mapping

from twitstack.writes.errors import InvalidTransitionError
from twitstack.writes.models import ModerationStatus as S

# Final states: no move out; the ledger keeps them for the retention period, then forgets them.
TERMINAL_STATES: frozenset[S] = frozenset({S.REJECTED, S.EXECUTED, S.FAILED, S.EXPIRED})

# States a request may be recorded in when it first reaches the ledger.
INITIAL_STATES: frozenset[S] = frozenset({S.PENDING, S.APPROVED, S.NEEDS_REVIEW})

# The one table of allowed moves (edits, which go back to pending, are listed as X -> pending).
TRANSITIONS: Mapping[S, frozenset[S]] = {
    S.PENDING: frozenset({S.PENDING, S.APPROVED, S.REJECTED, S.EXPIRED, S.NEEDS_REVIEW}),
    # approved -> approved reschedules; -> pending is an edit, which voids the approval.
    S.APPROVED: frozenset(
        {S.APPROVED, S.PENDING, S.SENDING, S.REJECTED, S.EXPIRED, S.NEEDS_REVIEW}
    ),
    # sending -> approved: X said "not sent" (429, connect error) so the request waits again.
    S.SENDING: frozenset({S.EXECUTED, S.FAILED, S.UNKNOWN, S.APPROVED, S.NEEDS_REVIEW}),
    # unknown -> approved: reconciliation found nothing after the grace period: re-send.
    S.UNKNOWN: frozenset({S.EXECUTED, S.FAILED, S.APPROVED, S.NEEDS_REVIEW}),
    # A human decides: approve (signing again), reject, edit, or record what happened.
    S.NEEDS_REVIEW: frozenset({S.PENDING, S.APPROVED, S.REJECTED, S.EXECUTED, S.FAILED}),
    S.REJECTED: frozenset(),
    S.EXECUTED: frozenset(),
    S.FAILED: frozenset(),
    S.EXPIRED: frozenset(),
}

# States from which an edit (a new revision, back to pending) is allowed.
EDITABLE_STATES: frozenset[S] = frozenset({S.PENDING, S.APPROVED, S.NEEDS_REVIEW})


def is_allowed(from_state: S, to_state: S) -> bool:
    """True if the table allows moving from `from_state` to `to_state`."""
    return to_state in TRANSITIONS[from_state]


def check_allowed(from_states: frozenset[S], to_state: S) -> None:
    """Raise InvalidTransitionError unless every listed source may move to `to_state`."""
    refused = sorted(state.value for state in from_states if not is_allowed(state, to_state))
    if refused or not from_states:
        raise InvalidTransitionError(
            f"expected a move the transition table allows into {to_state.value}, "
            f"found from {', '.join(refused) or '(no states)'}"
        )
