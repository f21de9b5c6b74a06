"""Settling `unknown` requests: read the account's posts or DMs back and decide, never guess."""

from __future__ import annotations

import enum
import math
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from twitstack.core.logging import get_logger
from twitstack.core.sections.writer import WriterSettings
from twitstack.writer.candidates import matching_items, rivals, window_for
from twitstack.writer.journal import WriterJournal
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.outcome import OutcomeKind
from twitstack.writer.spend_ledger import SpendLedger
from twitstack.writer.thread_reconcile import ThreadReconciler
from twitstack.writer.tokens import CredentialsError, TokenManager
from twitstack.writer.x_reads import PostedItem, ReadBack
from twitstack.writer.xapi_client import XApiClient, XApiError
from twitstack.writes import keys
from twitstack.writes.due_scan import MAX_ROUNDS, pick_due
from twitstack.writes.ledger_types import LedgerRecord
from twitstack.writes.models import ModerationStatus, WriteAction, utcnow
from twitstack.writes.quarantine import Quarantine

S = ModerationStatus
_log = get_logger("twitstack.writer.reconcile")
# Posts older than the first attempt by more than this cannot be the one we sent.
_MATCH_SLACK = timedelta(minutes=10)
_BATCH = 100
# When the shared read of a sweep stops at its page limit, one request is looked up alone:
# from shortly before its own attempt, with more pages.
_NARROW_SLACK = timedelta(minutes=2)
_NARROW_MAX_PAGES = 20
_WRITER_ACTOR = "writer:"  # the journal's actor of a writer replica: "writer:<consumer id>"


class Verdict(enum.StrEnum):
    """What reconciliation decided for one request (the metric's `result` label)."""

    FOUND = "found"  # X has it: executed with its id
    RESENT = "resent"  # absent after the grace period: back to approved for a new attempt
    WAITING = "waiting"  # absent, but X's read-back may lag: look again later
    REVIEW = "needs_review"  # cannot be settled by a machine
    DEFERRED = "deferred"  # could not read X right now
    SKIPPED = "skipped"  # someone else settled it first
    QUARANTINED = "quarantined"  # its data stopped the reconciler: quarantined, passed over


ReadKey = tuple[str, str, str]  # (account, "tweets" | "dms", participant)
ReadCache = dict[ReadKey, ReadBack]


class Reconciler:
    """Turns `unknown` (and abandoned `sending`) requests into executed, re-sent or review."""

    def __init__(
        self,
        redis: Redis,
        journal: WriterJournal,
        client: XApiClient,
        tokens: TokenManager,
        settings: WriterSettings,
        metrics: WriterMetrics,
        *,
        spend: SpendLedger,
        quarantine: Quarantine,
        started_at: datetime | None = None,
    ) -> None:
        self._redis = redis
        self._spend = spend
        self._quarantine = quarantine
        # When this run began: `sending` left by our own consumer id before it is abandoned.
        self._started_at = started_at or utcnow()
        self._journal = journal
        self._client = client
        self._tokens = tokens
        self._settings = settings
        self._metrics = metrics
        self._since = 0.0  # earliest attempt time of the batch being swept (epoch s)
        self._threads = ThreadReconciler(journal, client, tokens, settings)

    async def sweep(self) -> dict[Verdict, int]:
        """One pass: abandoned `sending` become `unknown`, then every `unknown` is looked at.

        Oldest first, a batch at a time; a quarantined record is left out (due_scan), and
        while a batch had records passed over (quarantined now, unreadable, gone), the next
        batch is taken in the same pass: a head of poisoned records cannot hold back the rest.
        """
        # Quarantined sending/unknown ids this pass's picks passed over -> loaded as rivals yet.
        # The pass's own: a sweep run beside another (a test, an operator) must not clear it.
        held: dict[str, bool] = {}
        in_flight = await self.expire_abandoned_sending(held)
        unsettled: list[LedgerRecord] = list(in_flight)
        verdicts: dict[Verdict, int] = {}
        handled: set[str] = set()
        for _ in range(MAX_ROUNDS):
            ids = await self._pick(S.UNKNOWN, handled, held)
            if not ids:
                break
            handled.update(ids)
            records = await self._journal.ledger.get_many(ids)
            # One read per account and batch, reaching back to the earliest attempt in it.
            since = min((_started(r) for r in records), default=utcnow()) - _MATCH_SLACK
            cache: ReadCache = {}
            self._since = since.timestamp()
            unsettled.extend(records)
            unsettled.extend(await self._held_rivals(held))
            passed_over = len(ids) - len(records)
            for record in records:
                verdict = await self._reconcile_one(record, cache, unsettled)
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
                if verdict is Verdict.QUARANTINED:
                    passed_over += 1
                elif verdict not in (Verdict.WAITING, Verdict.DEFERRED):
                    self._metrics.reconciliations.labels(result=verdict.value).inc()
            if not passed_over:
                break  # the rest waits for the next pass, as before
        return verdicts

    async def _pick(self, state: S, handled: set[str], held: dict[str, bool]) -> list[str]:
        """The next batch of `state`, oldest first, past quarantined and handled records."""

        async def read(offset: int, count: int) -> list[object]:
            return list(
                await self._redis.zrange(keys.state_index(state), offset, offset + count - 1)
            )

        pick = await pick_due(self._redis, read, want=_BATCH, skip=handled)
        for request_id in pick.held:
            held.setdefault(request_id, False)
        return pick.ids

    async def _held_rivals(self, held: dict[str, bool]) -> list[LedgerRecord]:
        """Quarantined `sending`/`unknown` records the picks passed over, not yet loaded.

        They are not reconciled, but one of them may be the request X's post belongs to: left
        out of the rivals, a request with the same text could claim its post and be counted
        executed though its own never went out.
        """
        fresh = [request_id for request_id, loaded in held.items() if not loaded]
        for request_id in fresh:
            held[request_id] = True
        if not fresh:
            return []
        records = await self._journal.ledger.get_many(fresh)
        return [r for r in records if r.state in (S.SENDING, S.UNKNOWN)]

    async def _reconcile_one(
        self, record: LedgerRecord, cache: ReadCache, unsettled: Sequence[LedgerRecord]
    ) -> Verdict:
        """`reconcile`, but a record whose data stops it (junk written by hand into its hash
        or its notes, a key of the wrong type: the same on every pass) is quarantined and the
        sweep goes on; an outage or ACL refusal still stops the sweep."""
        try:
            return await self.reconcile(record, cache, unsettled)
        except Exception as exc:
            await self._quarantine.put_failure("record", record.request.id, exc)
            return Verdict.QUARANTINED

    async def expire_abandoned_sending(
        self, held: dict[str, bool] | None = None
    ) -> list[LedgerRecord]:
        """Make `sending` requests whose attempt was abandoned `unknown`; returns the others.

        Abandoned: left by this replica's previous run (same consumer id, attempt begun before
        this run started), or by a replica whose heartbeat has lapsed, or older than
        stale_sending_s whoever holds it (a live replica's attempt never lasts that long).
        Batches are taken as in `sweep`, past quarantined records, whose ids go into `held`.
        """
        held = {} if held is None else held
        still: list[LedgerRecord] = []
        handled: set[str] = set()
        for _ in range(MAX_ROUNDS):
            ids = await self._pick(S.SENDING, handled, held)
            if not ids:
                break
            handled.update(ids)
            records = await self._journal.ledger.get_many(ids)
            passed_over = len(ids) - len(records)
            for record in records:
                if record.state is not S.SENDING:
                    passed_over += 1
                    continue
                try:
                    if not await self._expire_one(record):
                        still.append(record)
                except Exception as exc:
                    # As in `_reconcile_one`: this record is quarantined, the others go on.
                    # It is still `sending` as far as anyone knows: a rival for X's posts.
                    await self._quarantine.put_failure("record", record.request.id, exc)
                    still.append(record)
                    passed_over += 1
            if not passed_over:
                break
        return still

    async def _expire_one(self, record: LedgerRecord) -> bool:
        """Make `record` `unknown` if its attempt was abandoned; False while it may settle."""
        why = await self._abandoned(record)
        if why is None:
            return False
        change = await self._journal.move(
            record.request, S.UNKNOWN, from_states=[S.SENDING], reason=why
        )
        if change.ok:
            # Its outcome is unknown and its end too: the window stays open (inf).
            started = _started(record).timestamp()
            await self._journal.note_ambiguous(record.request.id, started=started, ended=math.inf)
        return True

    async def _abandoned(self, record: LedgerRecord) -> str | None:
        """Why `record`'s attempt is abandoned, or None while its writer may still settle it."""
        started = _started(record)
        owner = record.last_actor
        if owner == self._journal.actor:
            if started < self._started_at:
                return "abandoned_sending:restarted"
        elif owner.startswith(_WRITER_ACTOR):
            consumer = owner[len(_WRITER_ACTOR) :]
            if not await self._redis.exists(keys.heartbeat(consumer)):
                return "abandoned_sending:heartbeat_lapsed"
        if started < utcnow() - timedelta(seconds=self._settings.stale_sending_s):
            return "abandoned_sending"
        return None

    async def reconcile(
        self,
        record: LedgerRecord,
        cache: ReadCache | None = None,
        unsettled: Sequence[LedgerRecord] = (),
    ) -> Verdict:
        """Decide one `unknown` request; `unsettled` are the other sending/unknown requests."""
        request = record.request
        if request.action == WriteAction.DELETE:
            # DELETE is idempotent: sending it again is always safe (404 = already gone).
            return await self._resend(record, reason="reconcile_delete_again", count=False)
        if request.action == WriteAction.THREAD:
            return Verdict(await self._threads.reconcile(record, unsettled))
        account = self._settings.account(request.account)
        if account is None:
            return await self._review(record, "unknown_account")
        if request.action == WriteAction.DM and not account.dm_read_back:
            # No DM read-back, and X has no duplicate guard for DMs: a human must check.
            return await self._review(record, "dm_not_readable")
        attempts = await self._journal.attempt_window(request.id)
        window = window_for(record, attempts, slack_s=self._settings.reconcile_window_slack_s)
        try:
            read = await self._read(record, account.user_id, cache if cache is not None else {})
            found = matching_items(record, read.items, account.user_id, window)
            if not found and not read.complete and request.action == WriteAction.TWEET:
                read = await self._read_alone(record, account.user_id)
                found = matching_items(record, read.items, account.user_id, window)
        except CredentialsError:
            return Verdict.DEFERRED
        except XApiError as exc:
            if exc.outcome.kind in (OutcomeKind.TRANSIENT_RETRY, OutcomeKind.WAIT_UNTIL):
                return Verdict.DEFERRED
            return await self._review(record, f"read_back_failed:{exc.outcome.reason}")
        if found:
            verdict = await self._claim_found(record, found, unsettled)
            if verdict is not None:
                return verdict
        if not read.complete:
            # The read stopped before X's list ended: "not seen" is not "absent". Sending
            # again could post twice, so a human decides (at most once under doubt).
            return await self._review(record, "read_back_incomplete")
        if utcnow() - _started(record) < timedelta(seconds=self._settings.reconcile_grace_s):
            return Verdict.WAITING
        return await self._resend(record, reason="reconciled_absent_resend", count=True)

    async def _claim_found(
        self, record: LedgerRecord, found: list[PostedItem], unsettled: Sequence[LedgerRecord]
    ) -> Verdict | None:
        """Settle on one of the matching posts; None when every one belongs to another request."""
        request = record.request
        kind = "dm" if request.action == WriteAction.DM else "tweet"
        claims = self._journal.claims
        holders = await claims.holders(kind, [item.id for item in found])
        mine = [item for item in found if holders.get(item.id) == request.id]
        if mine:
            return await self._executed(record, mine[0])  # claimed by an earlier settle
        free = [item for item in found if item.id not in holders]
        if not free:
            return None
        if len(free) > 1:
            return await self._review(record, f"ambiguous_match:{len(free)}_posts")
        item = free[0]
        competing = rivals(record, item, unsettled)
        if any(other.state is S.SENDING for other in competing):
            return Verdict.WAITING  # the rival's own answer from X may settle whose it is
        if competing:
            return await self._review(record, "ambiguous_match:another_request")
        if await claims.claim(kind, item.id, request.id) != request.id:
            return Verdict.DEFERRED  # another request claimed it just now: look again
        return await self._executed(record, item)

    async def _executed(self, record: LedgerRecord, item: PostedItem) -> Verdict:
        key = "tweet_id" if record.request.action == WriteAction.TWEET else "dm_event_id"
        change = await self._journal.move(
            record.request,
            S.EXECUTED,
            from_states=[S.UNKNOWN],
            reason="reconciled_found",
            result={key: item.id, "reconciled": True},
        )
        return Verdict.FOUND if change.ok else Verdict.SKIPPED

    async def _read(self, record: LedgerRecord, user_id: str, cache: ReadCache) -> ReadBack:
        request = record.request
        is_dm = request.action == WriteAction.DM
        participant = str(request.payload["recipient_id"]) if is_dm else user_id
        key: ReadKey = (request.account, "dms" if is_dm else "tweets", participant)
        if key not in cache:
            auth = await self._tokens.auth_for(request.account)
            if is_dm:
                read = self._client.recent_dms(participant, auth=auth.auth)
            else:
                since = min(self._since, (_started(record) - _MATCH_SLACK).timestamp())
                read = self._client.recent_tweets(user_id, auth=auth.auth, since=since)
            cache[key] = await self._billed(request.account, is_dm, read)
        return cache[key]

    async def _read_alone(self, record: LedgerRecord, user_id: str) -> ReadBack:
        """The account's tweets since shortly before this request's attempt, more pages deep."""
        auth = await self._tokens.auth_for(record.request.account)
        since = (_started(record) - _NARROW_SLACK).timestamp()
        read = self._client.recent_tweets(
            user_id, auth=auth.auth, since=since, max_pages=_NARROW_MAX_PAGES
        )
        return await self._billed(record.request.account, False, read)

    async def _billed(
        self, account: str, is_dm: bool, read: Coroutine[Any, Any, ReadBack]
    ) -> ReadBack:
        """Await a read-back and charge every item X returned (X bills reads per resource),
        also those of the pages before a page that failed."""
        action = "dm_event_read" if is_dm else "timeline_read"
        try:
            found = await read
        except XApiError as exc:
            await self._spend.record(account, action, exc.items_read)
            raise
        await self._spend.record(account, action, len(found.items))
        return found

    async def _resend(self, record: LedgerRecord, *, reason: str, count: bool) -> Verdict:
        if count:
            resends = await self._journal.count(record.request.id, "resends")
            if resends >= self._settings.max_resend_cycles:
                return await self._review(record, "absent_after_max_resends")
        # Only for the attempt this verdict is about: an attempt that went `unknown` since was
        # never looked for on X, and re-sending over it could post twice.
        change = await self._journal.later(
            record.request, not_before=utcnow(), reason=reason, from_states=[S.UNKNOWN],
            expected_attempt=record.attempt,
        )  # fmt: skip
        if change.ok and count:
            # Counted once it happened: replicas reconciling the same request must not spend
            # its re-send cycles on verdicts the ledger refused (a crash right after the move
            # can allow one cycle more than max_resend_cycles, never a send without a look).
            await self._journal.note(record.request.id, "resends")
        return Verdict.RESENT if change.ok else Verdict.SKIPPED

    async def _review(self, record: LedgerRecord, reason: str) -> Verdict:
        change = await self._journal.move(
            record.request, S.NEEDS_REVIEW, from_states=[S.UNKNOWN], reason=reason,
            expected_attempt=record.attempt,
        )  # fmt: skip
        if change.ok:
            _log.warning(
                "writer.reconcile_needs_review", request_id=record.request.id, reason=reason
            )
        return Verdict.REVIEW if change.ok else Verdict.SKIPPED


def _started(record: LedgerRecord) -> datetime:
    return record.sending_started_at or record.updated_at
