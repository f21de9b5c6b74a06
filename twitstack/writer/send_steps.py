"""The writer's hot path in Redis: begin sending, and settle with the ack, one Lua call each.

Executing one approved message used to take seven round trips (record, read back, reserve,
`sending`, observe headers, settle, ack). `begin` records the message, reserves rate-limit
room and commits `sending` atomically; `settle` records X's headers, makes the final
transition and acks the message atomically. Nothing is weakened: `sending` is still committed
before the first byte goes to X, and an ack can no longer happen without its transition.

Concurrent workers' calls of each step are group-committed (twitstack.writer.group_commit): the
calls that arrive while one is in flight go together in one call of the step's batch script,
which runs each entry exactly as its own call would and pays once per batch for the keys they
all touch (see lua/group_commit.lua). A lone call still runs the one-entry script.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from redis._parsers.base import BaseParser
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from twitstack.writer.group_commit import GroupCommit
from twitstack.writer.ratelimit import RateLimitBudgets, budget_keys, observe_args, observed
from twitstack.writes import keys, scripts
from twitstack.writes.claims import claim_key
from twitstack.writes.errors import UnreadableError
from twitstack.writes.ledger import RequestLedger, record_keys_and_args
from twitstack.writes.ledger_types import TransitionResult, TransitionStatus, as_text
from twitstack.writes.models import ModerationStatus, WriteRequest
from twitstack.writes.queue import message_digest
from twitstack.writes.transitions import Change, parse_transition

S = ModerationStatus
_REFUSALS = frozenset({TransitionStatus.SPENT.value, TransitionStatus.TOMBSTONED.value})
# begin_sending's answer for a held record whose attempt or created_ms it cannot move.
_UNREADABLE = "unreadable"
# Most entries one batched call carries: the writer runs at most 48 workers, so a batch rarely
# waits behind another; a bound keeps one call's time in Redis short all the same.
GROUP_MAX = 32

# One step's call: its KEYS and ARGV.
StepCall = tuple[list[Any], list[Any]]


@dataclass(frozen=True, slots=True)
class QueueTicket:
    """The queue message a request arrived in, so its settle can ack it in the same call."""

    processing: str  # the consumer's processing list holding it
    raw: bytes


@dataclass(frozen=True, slots=True)
class PostClaim:
    """The post X created for a request, to be claimed in the same call that settles it."""

    kind: str  # "tweet" or "dm" (their ids are separate)
    post_id: str


@dataclass(frozen=True, slots=True)
class Settled:
    """What `SendSteps.settle_claimed` did."""

    moved: TransitionResult
    remaining: dict[str, int]  # budget left per window X reported
    holder: str | None  # who holds the claimed post (the request itself when it won)


@dataclass(frozen=True, slots=True)
class Observation:
    """X's answer to a call that held a reservation, not yet recorded in the budgets."""

    account: str
    endpoint: str
    headers: Mapping[str, str]


class BeginOutcome(enum.StrEnum):
    """How `SendSteps.begin` ended."""

    SENDING = "ok"  # `sending` is committed: call X
    BLOCKED = "blocked"  # no rate-limit room: the request is still approved
    BUDGET = "budget"  # a spend cap would be passed: still approved, the account held
    DIFFERS = "differs"  # the ledger holds another state, revision or content: read it
    MOVED = "moved"  # someone else moved it between the checks (a lost race)
    REFUSED = "refused"  # the ledger refused to spend the approval (`refused` says why)


@dataclass(frozen=True, slots=True)
class BeginResult:
    """What `begin` did; `created` says whether it recorded the request."""

    outcome: BeginOutcome
    created: bool
    attempt: int = 0
    blocked_until: float | None = None
    refused: str | None = None  # "spent" or "tombstoned" (see lua/ledger_guards.lua)
    auto_approved: bool = False  # this call moved it pending -> approved (auto_approved)
    spend_reply: tuple[Any, ...] = ()  # spend_core's reply (lua/spend_core.lua)


class SendSteps:
    """The two fused steps, over the ledger's transition and the shared budgets."""

    def __init__(
        self,
        redis: Redis,
        ledger: RequestLedger,
        budgets: RateLimitBudgets,
        *,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        """`on_batch(step, size)` is told the size of each call of "begin" or "settle"."""
        self._ledger = ledger
        self._budgets = budgets

        def told(step: str) -> Callable[[int], None] | None:
            return None if on_batch is None else functools.partial(on_batch, step)

        self._begins = GroupCommit(
            batched(redis, scripts.register(redis, "begin_sending"),
                     scripts.register(redis, "begin_sending_batch")),
            max_batch=GROUP_MAX, on_batch=told("begin"),
        )  # fmt: skip
        self._settles = GroupCommit(
            batched(redis, scripts.register(redis, "settle_sending"),
                     scripts.register(redis, "settle_sending_batch")),
            max_batch=GROUP_MAX, on_batch=told("settle"),
        )  # fmt: skip

    async def begin(
        self,
        request: WriteRequest,
        raw: bytes,
        endpoint: str,
        *,
        actor: str,
        spend: tuple[list[str], list[str | int]],
        auto_approve: bool = False,
    ) -> BeginResult:
        """Record `request` (once), reserve room on `endpoint` and spend budget, commit
        approved -> sending and charge it (`spend`: spend_core's S and P).

        The caller has verified the approval of exactly these message bytes; the step goes
        on only if the ledger holds this message, approved, at its revision. With
        `auto_approve` (require_approval = false) the ledger may hold it pending instead: it
        is moved pending -> approved first, in the same call.
        """
        reply = await self._begins.submit(
            self.begin_call(
                request, raw, endpoint, actor=actor, spend=spend, auto_approve=auto_approve
            )
        )
        status, created = as_text(reply[0]), as_text(reply[1]) == "created"
        auto = as_text(reply[5]) == "auto"
        tail = tuple(reply[6:])
        if status in (BeginOutcome.BLOCKED, BeginOutcome.BUDGET):
            return BeginResult(
                BeginOutcome(status), created, blocked_until=float(reply[2]),
                auto_approved=auto, spend_reply=tail,
            )  # fmt: skip
        if status == BeginOutcome.DIFFERS:
            return BeginResult(BeginOutcome.DIFFERS, created)
        if status == _UNREADABLE:
            # Nothing was written: the record is for quarantine, its message for the dead letters.
            field = as_text(reply[2])
            raise UnreadableError(
                "record", request.id, "malformed_record", f"{field}: not a count the ledger writes"
            )
        if status == BeginOutcome.SENDING:
            return BeginResult(
                BeginOutcome.SENDING,
                created,
                attempt=int(reply[4]),
                auto_approved=auto,
                spend_reply=tail,
            )
        if status in _REFUSALS:
            return BeginResult(
                BeginOutcome.REFUSED, created, refused=status, auto_approved=auto,
                spend_reply=tail,
            )  # fmt: skip
        return BeginResult(BeginOutcome.MOVED, created, auto_approved=auto, spend_reply=tail)

    async def settle(
        self,
        request_id: str,
        to_state: ModerationStatus,
        *,
        from_states: Collection[ModerationStatus],
        actor: str,
        reason: str,
        result: Mapping[str, Any] | None,
        observation: Observation | None,
        ticket: QueueTicket | None,
    ) -> tuple[TransitionResult, dict[str, int]]:
        """Record `observation`, move the request, ack `ticket`: one atomic call.

        Returns the transition's result and the remaining budget per window X reported.
        """
        settled = await self.settle_claimed(
            request_id, to_state, from_states=from_states, actor=actor, reason=reason,
            result=result, observation=observation, ticket=ticket, claim=None,
        )  # fmt: skip
        return settled.moved, settled.remaining

    async def settle_claimed(
        self,
        request_id: str,
        to_state: ModerationStatus,
        *,
        from_states: Collection[ModerationStatus],
        actor: str,
        reason: str,
        result: Mapping[str, Any] | None,
        observation: Observation | None,
        ticket: QueueTicket | None,
        claim: PostClaim | None,
    ) -> Settled:
        """`settle`, also claiming `claim`'s post for the request first (same atomic call)."""
        reply = await self._settles.submit(
            self.settle_call(
                request_id, to_state, from_states=from_states, actor=actor, reason=reason,
                result=result, observation=observation, ticket=ticket, claim=claim,
            )
        )  # fmt: skip
        holder = as_text(reply[6]) if claim is not None else None
        moved = parse_transition(reply[:4], request_id, to_state)
        return Settled(moved, observed(reply[4:6]), holder)

    def begin_call(
        self,
        request: WriteRequest,
        raw: bytes,
        endpoint: str,
        *,
        actor: str,
        spend: tuple[list[str], list[str | int]],
        auto_approve: bool = False,
    ) -> StepCall:
        """begin_sending's KEYS and ARGV for `begin`'s arguments."""
        transition_keys, transition_args = self._ledger.transitions.keys_and_args(
            request.id, frozenset({S.APPROVED}), S.SENDING, actor=actor, reason="sending",
            expected_revision=request.revision, change=Change(bump_attempt=True),
        )  # fmt: skip
        _, record_args, _ = record_keys_and_args(
            request, actor=actor, reason="received", events_maxlen=self._ledger.events_maxlen
        )
        return (
            [*transition_keys, *budget_keys(request.account, endpoint), *spend[0]],
            [
                *transition_args, *record_args, raw, *self._budgets.reserve_args(), *spend[1],
                "1" if auto_approve else "0",
            ],
        )  # fmt: skip

    def settle_call(
        self,
        request_id: str,
        to_state: ModerationStatus,
        *,
        from_states: Collection[ModerationStatus],
        actor: str,
        reason: str,
        result: Mapping[str, Any] | None,
        observation: Observation | None,
        ticket: QueueTicket | None,
        claim: PostClaim | None,
    ) -> StepCall:
        """settle_sending's KEYS and ARGV for `settle_claimed`'s arguments."""
        transition_keys, transition_args = self._ledger.transitions.keys_and_args(
            request_id, frozenset(from_states), to_state, actor=actor, reason=reason,
            expected_revision=None, change=Change(result=result),
        )  # fmt: skip
        # Keys of a part that is switched off are never touched: empty names stand in.
        if observation is None:
            budget = ["", "", ""]
            observe: list[str | int] = ["0", *["" for _ in range(8)]]
        else:
            budget = budget_keys(observation.account, observation.endpoint)
            observe = ["1", *observe_args(observation.headers, reserved=True)]
        ack_args: list[str | bytes] = ["", ""]
        processing = ""
        if ticket is not None:
            ack_args = [ticket.raw, message_digest(ticket.raw)]
            processing = ticket.processing
        claimed = "" if claim is None else claim_key(claim.kind, claim.post_id)
        return (
            [*transition_keys, *budget, processing, keys.CRASH_COUNTS, claimed],
            [*transition_args, *observe, *ack_args, max(self._ledger.retention_s, 1)],
        )


def batched(
    redis: Redis, one: AsyncScript, batch: AsyncScript
) -> Callable[[list[StepCall]], Awaitable[list[Any]]]:
    """A step's batched call: `one` for a lone call, else `batch` (lua/group_commit.lua's
    layout: the entry count, each entry's key and argument counts, then their arguments).
    Neither is ever sent twice (scripts.run_once): a lost reply is the callers' unknown."""

    async def run(calls: list[StepCall]) -> list[Any]:
        if len(calls) == 1:
            return [await scripts.run_once(redis, one, calls[0][0], calls[0][1])]
        counts: list[Any] = [len(calls)]
        all_keys: list[Any] = []
        all_args: list[Any] = []
        for call_keys, call_args in calls:
            counts += [len(call_keys), len(call_args)]
            all_keys += call_keys
            all_args += call_args
        rows = await scripts.run_once(redis, batch, all_keys, [*counts, *all_args])
        return [_entry(row) for row in rows]

    return run


def _entry(row: list[Any]) -> Any:
    """One entry's reply in a batch, or the error its own call would have raised."""
    if as_text(row[0]) == "ok":
        return row[1:]
    error: Exception = BaseParser.parse_error(as_text(row[1]))  # type: ignore[no-untyped-call]
    return error
