"""The compare-and-set transition, as one Lua call: state, index, schedule, expiry, event."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from redis.asyncio import Redis

from twitstack.writes import keys, scripts
from twitstack.writes.ledger_types import TransitionResult, TransitionStatus, as_text, epoch_ms
from twitstack.writes.models import ModerationStatus, WriteRequest, format_time, utcnow
from twitstack.writes.states import TERMINAL_STATES, check_allowed
from twitstack.writes.wire import encode_write_request

Dispatch = Literal["none", "queue", "schedule"]
# The terminal states as the Lua scripts take them (space separated).
TERMINAL_NAMES = " ".join(sorted(state.value for state in TERMINAL_STATES))


@dataclass(frozen=True, slots=True)
class Change:
    """What a transition does besides moving the state.

    `dispatch`: "queue" pushes the stored message onto write_queue, "schedule" adds the id to
    the schedule at `due`. `expires`: "keep" leaves the expiry index alone, None removes the id.
    """

    result: Mapping[str, Any] | None = None
    bump_attempt: bool = False
    new_request: WriteRequest | None = None
    dispatch: Dispatch = "none"
    due: datetime | None = None
    expires: datetime | Literal["keep"] | None = "keep"


def dispatch_for(due: datetime | None) -> tuple[Dispatch, datetime | None]:
    """Queue now if `due` has passed (or is None), else schedule for `due`."""
    if due is not None and due > utcnow():
        return "schedule", due
    return "queue", None


class TransitionScript:
    """Runs `lua/transition.lua`; refuses moves the state table forbids before calling Redis."""

    def __init__(self, redis: Redis, *, retention_s: int, events_maxlen: int) -> None:
        self._script = scripts.register(redis, "transition")
        self._retention_s = retention_s
        self._events_maxlen = events_maxlen

    @property
    def retention_s(self) -> int:
        """Seconds a terminal request is kept."""
        return self._retention_s

    @property
    def events_maxlen(self) -> int:
        """The events stream's approximate cap."""
        return self._events_maxlen

    def keys_and_args(
        self,
        request_id: str,
        from_states: frozenset[ModerationStatus],
        to_state: ModerationStatus,
        *,
        actor: str,
        reason: str,
        expected_revision: int | None,
        change: Change,
    ) -> tuple[list[str], list[str | int | bytes]]:
        """KEYS and ARGV of `ledger_transition` (lua/transition_core.lua) for this move.

        Scripts that include the transition take these first, then their own.
        """
        check_allowed(from_states, to_state)
        now = utcnow()
        now_ms = epoch_ms(now)
        new = change.new_request
        expires = change.expires
        if new is not None and expires == "keep":
            expires = new.expires_at
        redis_keys = [
            keys.request(request_id),
            keys.EVENTS,
            keys.SCHEDULE,
            keys.EXPIRY,
            keys.RETENTION,
            keys.WRITE_QUEUE,
        ]
        args: list[str | int | bytes] = [
            request_id,
            " ".join(sorted(state.value for state in from_states)),
            to_state.value,
            "" if expected_revision is None else expected_revision,
            actor,
            reason,
            format_time(now),
            now_ms,
            "" if change.result is None else json.dumps(change.result, sort_keys=True),
            self._events_maxlen,
            self._retention_s,
            now_ms + self._retention_s * 1000,
            "1" if to_state in TERMINAL_STATES else "0",
            keys.STATE_INDEX_PREFIX,
            "1" if change.bump_attempt else "0",
            "" if new is None else encode_write_request(new),
            "" if new is None else new.revision,
            change.dispatch,
            "" if change.due is None else epoch_ms(change.due),
            _expiry_arg(expires),
            keys.REQUEST_PREFIX,
            TERMINAL_NAMES,
        ]
        return redis_keys, args

    async def run(
        self,
        request_id: str,
        from_states: frozenset[ModerationStatus],
        to_state: ModerationStatus,
        *,
        actor: str,
        reason: str,
        expected_revision: int | None,
        change: Change,
        expected_attempt: int | None = None,
    ) -> TransitionResult:
        """Apply the move if Redis holds one of `from_states` (and `expected_revision`, and
        `expected_attempt`: the attempt the caller's decision was made on)."""
        redis_keys, args = self.keys_and_args(
            request_id, from_states, to_state, actor=actor, reason=reason,
            expected_revision=expected_revision, change=change,
        )  # fmt: skip
        if expected_attempt is not None:
            args.append(expected_attempt)
        raw = await self._script(keys=redis_keys, args=args)
        return parse_transition(raw, request_id, to_state)


def parse_transition(
    raw: Sequence[Any], request_id: str, to_state: ModerationStatus
) -> TransitionResult:
    """The TransitionResult from `ledger_transition`'s reply {status, state, revision, attempt}."""
    found = as_text(raw[1])
    return TransitionResult(
        status=TransitionStatus(as_text(raw[0])),
        request_id=request_id,
        found_state=ModerationStatus(found) if found else None,
        to_state=to_state,
        revision=int(raw[2] or 0),
        attempt=int(raw[3] or 0),
    )


def _expiry_arg(expires: datetime | Literal["keep"] | None) -> str | int:
    if expires == "keep":
        return ""
    if expires is None:
        return "-"
    return epoch_ms(expires)
