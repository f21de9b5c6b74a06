"""Settling an `unknown` thread: find the part that was in flight on X, or send it again.

Only one part can be in doubt: the one `begin_part` marked in flight (every earlier part's id
is in the ledger). If no part is marked, nothing of the next part went out and the thread
simply resumes. Otherwise the account's timeline is read back from shortly before the mark:
the part is the post with exactly its text that answers the previous part (or, for the first
part, what the thread answers). Found, its id is recorded and the thread resumes after it (or
is executed when it was the last); absent after the grace period, the thread resumes at it.
"""

from __future__ import annotations

from collections.abc import Sequence

from twitstack.core.logging import get_logger
from twitstack.core.sections.writer import WriterSettings
from twitstack.writer.candidates import observed
from twitstack.writer.journal import WriterJournal
from twitstack.writer.matching import text_matches
from twitstack.writer.outcome import OutcomeKind
from twitstack.writer.tokens import CredentialsError, TokenManager
from twitstack.writer.x_reads import PostedItem
from twitstack.writer.xapi_client import XApiClient, XApiError
from twitstack.writes.ledger_types import LedgerRecord
from twitstack.writes.models import ModerationStatus, WriteAction, utcnow
from twitstack.writes.thread import part_reply_target, thread_parts
from twitstack.writes.thread_progress import PartStatus, ThreadProgress

S = ModerationStatus
_log = get_logger("twitstack.writer.reconcile")
# X's and this host's clocks may disagree a little: look from this long before the mark.
_SLACK_S = 120.0
_MAX_PAGES = 20


class ThreadReconciler:
    """Decides one `unknown` thread; answers with the reconciler's verdict names."""

    def __init__(
        self,
        journal: WriterJournal,
        client: XApiClient,
        tokens: TokenManager,
        settings: WriterSettings,
    ) -> None:
        self._journal = journal
        self._client = client
        self._tokens = tokens
        self._settings = settings

    async def reconcile(self, record: LedgerRecord, unsettled: Sequence[LedgerRecord]) -> str:
        """One of the Verdict values: found, resent, waiting, needs_review, deferred, skipped."""
        request = record.request
        parts = len(thread_parts(request.payload))
        progress = await self._journal.threads.progress(request.id)
        if progress.next_part >= parts:
            return await self._executed(record, progress, parts)
        if progress.inflight != progress.next_part or progress.inflight_since is None:
            # Nothing of the next part was committed in flight, so nothing of it went out.
            return await self._resume(record, "thread_resume", count=False)
        account = self._settings.account(request.account)
        if account is None:
            return await self._review(record, "unknown_account")
        try:
            auth = await self._tokens.auth_for(request.account)
            read = await self._client.recent_tweets(
                account.user_id, auth=auth.auth, since=progress.inflight_since - _SLACK_S,
                max_pages=_MAX_PAGES,
            )  # fmt: skip
        except CredentialsError:
            return "deferred"
        except XApiError as exc:
            if exc.outcome.kind in (OutcomeKind.TRANSIENT_RETRY, OutcomeKind.WAIT_UNTIL):
                return "deferred"
            return await self._review(record, f"read_back_failed:{exc.outcome.reason}")
        found = self._candidates(record, progress, read.items, account.user_id)
        if found:
            verdict = await self._claim(record, progress, parts, found, unsettled)
            if verdict is not None:
                return verdict
        if not read.complete:
            return await self._review(record, "read_back_incomplete")
        marked = progress.inflight_since
        if utcnow().timestamp() - marked < self._settings.reconcile_grace_s:
            return "waiting"
        return await self._resume(record, "reconciled_absent_resend", count=True)

    def _candidates(
        self,
        record: LedgerRecord,
        progress: ThreadProgress,
        items: Sequence[PostedItem],
        user_id: str,
    ) -> list[PostedItem]:
        payload = record.request.payload
        index = progress.next_part
        text = str(thread_parts(payload)[index].get("text", ""))
        target = part_reply_target(payload, index, progress.posted)
        since = (progress.inflight_since or 0.0) - _SLACK_S
        found = []
        for item in items:
            if item.author_id is not None and item.author_id != user_id:
                continue
            if item.reply_to != target:
                continue
            if item.created_at is not None and item.created_at.timestamp() < since:
                continue
            if text_matches(text, observed(item)):
                found.append(item)
        return found

    async def _claim(
        self,
        record: LedgerRecord,
        progress: ThreadProgress,
        parts: int,
        found: list[PostedItem],
        unsettled: Sequence[LedgerRecord],
    ) -> str | None:
        request = record.request
        claims = self._journal.claims
        holders = await claims.holders("tweet", [item.id for item in found])
        mine = [item for item in found if holders.get(item.id) == request.id]
        free = [item for item in found if item.id not in holders]
        if mine:
            item = mine[0]
        elif not free:
            return None
        elif len(free) > 1:
            return await self._review(record, f"ambiguous_match:{len(free)}_posts")
        else:
            item = free[0]
            if progress.next_part == 0:
                competing = _rivals(record, item, unsettled)
                if any(other.state is S.SENDING for other in competing):
                    return "waiting"
                if competing:
                    return await self._review(record, "ambiguous_match:another_request")
            if await claims.claim("tweet", item.id, request.id) != request.id:
                return "deferred"
        status, _ = await self._journal.threads.part_posted(
            request.id, progress.next_part, item.id, actor=self._journal.actor
        )
        if status not in (PartStatus.OK, PartStatus.ALREADY):
            if status is PartStatus.CONFLICT:
                return await self._review(record, "thread_part_conflict")
            return "skipped"
        _log.info(
            "writer.thread_part_reconciled", request_id=request.id,
            part=progress.next_part + 1, tweet_id=item.id,
        )  # fmt: skip
        after = await self._journal.threads.progress(request.id)
        if after.next_part >= parts:
            return await self._executed(record, after, parts)
        return await self._resume(record, "reconciled_part_found", count=False)

    async def _executed(self, record: LedgerRecord, progress: ThreadProgress, parts: int) -> str:
        change = await self._journal.move(
            record.request, S.EXECUTED, from_states=[S.UNKNOWN], reason="reconciled_found",
            result={**progress.to_result(parts), "reconciled": True},
            expected_attempt=record.attempt,
        )  # fmt: skip
        return "found" if change.ok else "skipped"

    async def _resume(self, record: LedgerRecord, reason: str, *, count: bool) -> str:
        if count:
            resends = await self._journal.count(record.request.id, "resends")
            if resends >= self._settings.max_resend_cycles:
                return await self._review(record, "absent_after_max_resends")
        # Only for the attempt this verdict is about: one that went `unknown` since (its part
        # in flight never looked for on X) is the next sweep's.
        change = await self._journal.later(
            record.request, not_before=utcnow(), reason=reason, from_states=[S.UNKNOWN],
            expected_attempt=record.attempt,
        )  # fmt: skip
        if change.ok and count:
            # Counted once it happened (see Reconciler._resend).
            await self._journal.note(record.request.id, "resends")
        return "resent" if change.ok else "skipped"

    async def _review(self, record: LedgerRecord, reason: str) -> str:
        change = await self._journal.move(
            record.request, S.NEEDS_REVIEW, from_states=[S.UNKNOWN], reason=reason,
            expected_attempt=record.attempt,
        )  # fmt: skip
        if change.ok:
            _log.warning(
                "writer.reconcile_needs_review", request_id=record.request.id, reason=reason
            )
        return "needs_review" if change.ok else "skipped"


def _rivals(
    record: LedgerRecord, item: PostedItem, unsettled: Sequence[LedgerRecord]
) -> list[LedgerRecord]:
    """Other unsettled tweets, or threads' first parts, that `item` would match as well."""
    seen = observed(item)
    found = []
    for other in unsettled:
        theirs = other.request
        if theirs.id == record.request.id or theirs.account != record.request.account:
            continue
        if theirs.action == WriteAction.TWEET:
            text = theirs.payload.get("text")
        elif theirs.action == WriteAction.THREAD:
            first = thread_parts(theirs.payload)[:1]
            text = first[0].get("text") if first else None
        else:
            continue
        if isinstance(text, str) and text_matches(text, seen):
            found.append(other)
    return found
