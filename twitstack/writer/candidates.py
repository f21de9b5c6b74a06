"""Which read-back items could be a request's post: exact text, the attempt's time window, rivals.

Reconciliation must never give a request a post that another request made. Three things tell
posts apart where text alone cannot: the links' `expanded_url`s (matching.py), the time window
of the request's ambiguous attempts, and the other unsettled requests that would match the same
post (rivals): while one of those exists, nobody can say whose post it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from twitstack.writer.matching import ObservedText, text_matches
from twitstack.writer.x_reads import PostedItem
from twitstack.writes.ledger_types import LedgerRecord
from twitstack.writes.models import WriteAction
from twitstack.writes.thread import thread_parts

# Without a recorded attempt window: posts older than the attempt by more than this cannot be
# the one we sent (the clocks of X and this host may disagree by a little).
MATCH_SLACK_S = 600.0


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Epoch seconds a matching post's `created_at` must lie within (None: unbounded)."""

    earliest: float
    latest: float | None

    def admits(self, item: PostedItem) -> bool:
        """True if `item` may have been created in this window (no timestamp: it may)."""
        if item.created_at is None:
            return True
        created = item.created_at.timestamp()
        return created >= self.earliest and (self.latest is None or created <= self.latest)


def window_for(
    record: LedgerRecord, attempts: tuple[float, float] | None, *, slack_s: float
) -> TimeWindow:
    """Where the request's post can be, given its uncertain attempts' (first start, last end).

    Attempts X refused for certain (a duplicate 403, a 4xx) posted nothing and do not count;
    an attempt abandoned in `sending` has no known end (inf). Posts before the first attempt
    are admitted for MATCH_SLACK_S, as the clocks may disagree; claims guard that side.
    """
    started = (record.sending_started_at or record.request.created_at).timestamp()
    if attempts is None:
        return TimeWindow(started - MATCH_SLACK_S, None)
    first, last = attempts
    latest = None if math.isinf(last) else last + slack_s
    return TimeWindow(min(started, first) - MATCH_SLACK_S, latest)


def sent_text(record: LedgerRecord) -> str:
    """The text the request asks X to post."""
    return str(record.request.payload.get("text", ""))


def media_count(record: LedgerRecord) -> int:
    """How many media items the request's post carries (ids or attachments)."""
    media = record.request.payload.get("media")
    if not isinstance(media, dict):
        return 0
    listed = media.get("media_ids", media.get("attachments"))
    return len(listed) if isinstance(listed, list) else 0


def matching_items(
    record: LedgerRecord, items: Iterable[PostedItem], user_id: str, window: TimeWindow
) -> list[PostedItem]:
    """The items that are exactly what posting the request produces, within its window."""
    sent = sent_text(record)
    media = media_count(record) if record.request.action == WriteAction.TWEET else None
    found = []
    for item in items:
        if item.author_id is not None and item.author_id != user_id:
            continue  # the other side of a DM conversation
        if window.admits(item) and text_matches(sent, observed(item), media=media):
            found.append(item)
    return found


def observed(item: PostedItem) -> ObservedText:
    """The item's text with X's rewrites undone."""
    return ObservedText.parse(item.text, item.entities)


def rivals(
    record: LedgerRecord, item: PostedItem, unsettled: Sequence[LedgerRecord]
) -> list[LedgerRecord]:
    """Other unsettled requests (sending or unknown) whose text `item` would match as well."""
    request = record.request
    seen = observed(item)
    found = []
    for other in unsettled:
        theirs = other.request
        if theirs.id == request.id or theirs.account != request.account:
            continue
        if request.action == WriteAction.TWEET and theirs.action == WriteAction.THREAD:
            # A thread's first part is a tweet too: while the thread is unsettled, it may be
            # the one that made this post (its later parts answer its own posts).
            first = thread_parts(theirs.payload)[:1]
            if first and text_matches(str(first[0].get("text", "")), seen):
                found.append(other)
            continue
        if theirs.action != request.action or theirs.action == WriteAction.DELETE:
            continue
        if theirs.payload.get("recipient_id") != request.payload.get("recipient_id"):
            continue
        media = media_count(other) if theirs.action == WriteAction.TWEET else None
        if text_matches(sent_text(other), seen, media=media):
            found.append(other)
    return found
