"""Moderator decisions on write requests: create, edit, approve (signed), reject; all audited."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from twitstack.core.logging import get_logger
from twitstack.moderation.audit import AuditLog
from twitstack.moderation.db import Database
from twitstack.moderation.history import HistoryIngester
from twitstack.moderation.metrics import ModerationMetrics
from twitstack.moderation.roles import Role
from twitstack.moderation.users import User
from twitstack.writes.errors import WireFormatError
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.ledger_types import LedgerRecord, TransitionResult, TransitionStatus
from twitstack.writes.models import ModerationStatus, WriteRequest
from twitstack.writes.signing import ApprovalSigner, ApprovalVerifier
from twitstack.writes.wire import decode_write_request

S = ModerationStatus
log = get_logger("twitstack.moderation.decisions")
MAX_REASON_CHARS = 1000
APPROVABLE = frozenset({S.PENDING, S.NEEDS_REVIEW})
REJECTABLE = frozenset({S.PENDING, S.APPROVED, S.NEEDS_REVIEW})
# States in which a request's approval is the one that moved it on (and may still be verified).
APPROVED_STATES = frozenset({S.APPROVED, S.SENDING, S.UNKNOWN, S.EXECUTED})
CHANGED = "the request changed since you opened it"


class DecisionError(Exception):
    """A decision was refused; `status` is the HTTP status that fits, the message says why."""

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        self.status = status
        self.message = message
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class ApproveOutcome:
    """What an approval did: sent to the writer, or recorded as the first of two."""

    request_id: str
    approved: bool
    approvers: tuple[str, ...]
    needed: int


def _fields(request: WriteRequest) -> dict[str, str]:
    """What every log line about a request names (never its text)."""
    return {"request_id": request.id, "account": request.account, "action": str(request.action)}


def _conflict(result: TransitionResult, verb: str) -> DecisionError:
    if result.found_state is None:
        return DecisionError(404, f"request {result.request_id} not found")
    if result.status is TransitionStatus.CONTENT_MISMATCH:
        return DecisionError(409, f"cannot {verb}: {CHANGED}; reload it and review it again")
    if result.status is TransitionStatus.REVISION_MISMATCH:
        return DecisionError(
            409, f"cannot {verb}: the request was edited (now revision {result.revision}); reload"
        )
    return DecisionError(
        409, f"cannot {verb}: the request is {result.found_state.value}, not awaiting review"
    )


class RequestDecisions:
    """The moderation service's side of the ledger, one method per decision."""

    def __init__(
        self,
        *,
        db: Database,
        ledger: RequestLedger,
        signer: ApprovalSigner,
        audit: AuditLog,
        history: HistoryIngester,
        metrics: ModerationMetrics,
        clock: Callable[[], float],
        two_person_actions: frozenset[str],
    ) -> None:
        self._db = db
        self._ledger = ledger
        self._signer = signer
        self._audit = audit
        self._history = history
        self._metrics = metrics
        self._clock = clock
        self._two_person = two_person_actions
        self._verifier = ApprovalVerifier([signer.public_key])

    @property
    def ledger(self) -> RequestLedger:
        return self._ledger

    async def _current(self, request_id: str) -> LedgerRecord:
        record = await self._ledger.get(request_id)
        if record is None:
            raise DecisionError(404, f"request {request_id} not found")
        return record

    async def get(self, request_id: str) -> LedgerRecord | None:
        return await self._ledger.get(request_id)

    async def create(self, raw: bytes, *, user: User, ip: str = "") -> tuple[WriteRequest, bool]:
        """Validate a queue-format message and record it as pending; (request, created).

        The same submission again (same id, author and content) is not created twice; an id
        that already names another author's request, or other content, is refused (409) and
        never merged into it.
        """
        try:
            request = decode_write_request(raw, allowed_states=frozenset({S.PENDING}))
        except WireFormatError as exc:
            raise DecisionError(422, exc.message, field=exc.field) from None
        if request.approval is not None:
            raise DecisionError(422, "approval: a new request cannot carry an approval")
        # The author is whoever is authenticated; the body cannot claim someone else.
        request = dataclasses.replace(request, author=user.username)
        result = await self._ledger.record(request, actor=user.username, reason="submitted")
        if not result.created:
            await self._check_same_submission(request)
        if result.created:
            await self._add_author(request.id, user.username)
            await self._audit.record(
                user.username, "request.create", request.id, {"action": str(request.action)}, ip=ip
            )
        log.info(
            "moderation.request_submitted",
            **_fields(request),
            author=user.username,
            created=result.created,
        )
        await self._history.catch_up()
        return request, result.created

    async def _check_same_submission(self, request: WriteRequest) -> None:
        existing = await self._ledger.get(request.id)
        if existing is None:
            raise DecisionError(
                409, f"request id {request.id} was already used by a request that is finished"
            )
        if (
            existing.request.author != request.author
            or existing.request.content_hash() != request.content_hash()
            or existing.request.revision != 1
        ):
            raise DecisionError(
                409,
                f"request id {request.id} already names another request (other content or "
                "author); submit it under another id",
                field="id",
            )

    async def _add_author(self, request_id: str, author: str) -> None:
        # Edits call this before the ledger changes: a would-be editor whose edit then fails is
        # merely one more person who may not approve, never one too few.
        await self._db.execute(
            "INSERT OR IGNORE INTO request_authors (request_id, author) VALUES (?, ?)",
            (request_id, author),
        )

    async def authors(self, request: WriteRequest) -> frozenset[str]:
        """Everyone who wrote any revision of `request`: its author and every editor."""
        rows = await self._db.fetchall(
            "SELECT author FROM request_authors WHERE request_id = ?", (request.id,)
        )
        found = {str(r[0]) for r in rows}
        if request.author:
            found.add(request.author)
        return frozenset(found)

    async def edit(
        self,
        request_id: str,
        payload: Mapping[str, Any],
        *,
        expected_revision: int,
        user: User,
        ip: str = "",
    ) -> int:
        """A new revision with `payload`; voids any approval. Returns the new revision."""
        record = await self._current(request_id)
        author = record.request.author or ""
        if user.role < Role.MODERATOR and author != user.username:
            raise DecisionError(403, "authors may only edit their own requests")
        await self._add_author(request_id, user.username)
        try:
            result = await self._ledger.edit(
                request_id, payload, expected_revision=expected_revision, actor=user.username
            )
        except WireFormatError as exc:
            raise DecisionError(422, exc.message, field=exc.field) from None
        if not result.ok:
            raise _conflict(result, "edit")
        await self._audit.record(
            user.username,
            "request.edit",
            request_id,
            {"from_revision": expected_revision, "to_revision": result.revision},
            ip=ip,
        )
        self._metrics.decisions.labels(decision="edit").inc()
        log.info(
            "moderation.request_edited",
            **_fields(record.request),
            editor=user.username,
            from_revision=expected_revision,
            to_revision=result.revision,
        )
        await self._history.catch_up()
        return result.revision

    async def approve(
        self,
        request_id: str,
        *,
        expected_revision: int,
        expected_content_hash: str,
        user: User,
        ip: str = "",
    ) -> ApproveOutcome:
        """Sign what the moderator reviewed and hand it to the writer (or record a first approval).

        `expected_revision` and `expected_content_hash` are those of the page or API read the
        moderator decided on; the signature is made only if the ledger still holds exactly
        that, and stored in a compare-and-set on the bytes that were signed.
        """
        stored = await self._ledger.read(request_id)
        if stored is None:
            raise DecisionError(404, f"request {request_id} not found")
        record = stored.record
        request = record.request
        if record.state not in APPROVABLE:
            raise DecisionError(409, f"cannot approve: the request is {record.state.value}")
        if request.revision != expected_revision:
            raise DecisionError(
                409, f"cannot approve: {CHANGED} (now revision {request.revision}); reload"
            )
        content_hash = request.content_hash()
        if content_hash != expected_content_hash:
            raise DecisionError(409, f"cannot approve: {CHANGED}; reload it and review it again")
        authors = await self.authors(request)
        if user.username in authors:
            raise DecisionError(403, "you cannot approve your own request (you wrote or edited it)")
        needed = 2 if str(request.action) in self._two_person else 1
        approvers = await self._record_approver(request, content_hash, user.username, needed)
        # A first approver who has since become an author (by editing) no longer counts.
        approvers = tuple(a for a in approvers if a not in authors)
        if len(approvers) < needed:
            await self._audit.record(
                user.username,
                "request.approve_first",
                request_id,
                {"revision": request.revision, "content_hash": content_hash, "needed": needed},
                ip=ip,
            )
            log.info(
                "moderation.request_first_approval",
                **_fields(request),
                approver=user.username,
                needed=needed,
            )
            return ApproveOutcome(request_id, False, approvers, needed)
        approval = self._signer.sign(request, approver=",".join(approvers))
        result = await self._ledger.approve(
            request_id,
            approval,
            expected_revision=expected_revision,
            actor=user.username,
            read=stored,
        )
        if not result.ok:
            raise _conflict(result, "approve")
        await self._audit.record(
            user.username,
            "request.approve",
            request_id,
            {"revision": request.revision, "approvers": ",".join(approvers)},
            ip=ip,
        )
        self._metrics.decisions.labels(decision="approve").inc()
        self._metrics.approval_latency.observe(
            max(0.0, self._clock() - request.created_at.timestamp())
        )
        log.info(
            "moderation.request_approved",
            **_fields(request),
            approver=user.username,
            approvers=",".join(approvers),
            revision=request.revision,
        )
        await self._history.catch_up()
        return ApproveOutcome(request_id, True, approvers, needed)

    def has_verified_approval(self, record: LedgerRecord) -> bool:
        """True if the ledger state is approved (or later) and its approval verifies.

        A pending record that merely carries an approval object is not approved.
        """
        return record.state in APPROVED_STATES and self._verifier.check(record.request).ok

    async def _record_approver(
        self, request: WriteRequest, content_hash: str, approver: str, needed: int
    ) -> tuple[str, ...]:
        if needed == 1:
            return (approver,)
        now = self._clock()
        cutoff = self._first_approval_cutoff(now)
        async with self._db.transaction() as tx:
            # A stale row of the same approver (an earlier request under this id) is renewed.
            await tx.execute(
                "INSERT INTO first_approvals"
                " (request_id, revision, content_hash, approver, at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (request_id, revision, content_hash, approver)"
                " DO UPDATE SET at = excluded.at WHERE at <= ?",
                (request.id, request.revision, content_hash, approver, now, cutoff),
            )
            rows = await tx.fetchall(
                "SELECT approver FROM first_approvals"
                " WHERE request_id = ? AND revision = ? AND content_hash = ? AND at > ?"
                " ORDER BY at, approver",
                (request.id, request.revision, content_hash, cutoff),
            )
        return tuple(str(r[0]) for r in rows)

    def _first_approval_cutoff(self, now: float) -> float:
        # An id can be recorded again only once its tombstone lapsed, at least the ledger's
        # retention after the earlier request ended (and so after all its first approvals):
        # first approvals older than that belong to another request with the same id and
        # content, and must not make a single click enough for it.
        return now - self._ledger.retention_s

    async def pending_approvers(self, request: WriteRequest) -> list[str]:
        """First approvers of a two-person action for exactly this revision and content."""
        rows = await self._db.fetchall(
            "SELECT approver FROM first_approvals"
            " WHERE request_id = ? AND revision = ? AND content_hash = ? AND at > ? ORDER BY at",
            (
                request.id,
                request.revision,
                request.content_hash(),
                self._first_approval_cutoff(self._clock()),
            ),
        )
        return [str(r[0]) for r in rows]

    async def reject(self, request_id: str, *, reason: str, user: User, ip: str = "") -> None:
        """Reject with a reason (required, at most MAX_REASON_CHARS)."""
        reason = reason.strip()
        if not reason:
            raise DecisionError(422, "reason: a rejection needs a reason", field="reason")
        if len(reason) > MAX_REASON_CHARS:
            raise DecisionError(
                422, f"reason: at most {MAX_REASON_CHARS} characters, got {len(reason)}"
            )
        result = await self._ledger.transition(
            request_id, S.REJECTED, from_states=REJECTABLE, actor=user.username, reason=reason
        )
        if not result.ok:
            raise _conflict(result, "reject")
        # The reason is the moderator's own words, so only its length is logged.
        rejected = await self._ledger.get(request_id)
        log.info(
            "moderation.request_rejected",
            **(_fields(rejected.request) if rejected is not None else {"request_id": request_id}),
            rejecter=user.username,
            reason_chars=len(reason),
        )
        await self._audit.record(
            user.username, "request.reject", request_id, {"reason": reason}, ip=ip
        )
        self._metrics.decisions.labels(decision="reject").inc()
        await self._history.catch_up()
