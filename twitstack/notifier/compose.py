"""What each notification says: title, links, one line per request (pure functions)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from urllib.parse import quote

from twitstack.core.sections.notifier import NotificationEvent
from twitstack.notifier.models import MAX_TEXT, Notification, RequestRef
from twitstack.writes.events import LedgerEvent
from twitstack.writes.ledger_types import LedgerRecord
from twitstack.writes.models import WriteAction

MAX_REQUESTS = 20  # per notification; the rest are counted and the list page linked
_TEXT_CHARS = 80


def request_url(base: str, request_id: str) -> str:
    return f"{base}/requests/{quote(request_id, safe='')}"


def summary(request_id: str, record: LedgerRecord | None, reason: str = "") -> str:
    """One line about a request: action, account, the start of a tweet's text, the reason.

    A DM's text is private to the moderation UI: only its action and account are named.
    """
    if record is None:
        head = f"request {request_id}"
    else:
        request = record.request
        head = f"{request.action} as {request.account}"
        text = request.payload.get("text")
        if request.action == WriteAction.TWEET and isinstance(text, str):
            shown = text if len(text) <= _TEXT_CHARS else text[: _TEXT_CHARS - 1] + "…"
            head += f': "{shown}"'
    line = f"{head} ({reason})" if reason else head
    return " ".join(line.split())[:MAX_TEXT]  # no newlines from a payload into a message


def _cut(refs: Sequence[RequestRef]) -> tuple[tuple[RequestRef, ...], int]:
    return tuple(refs[:MAX_REQUESTS]), max(0, len(refs) - MAX_REQUESTS)


_EVENT_TITLES = {
    NotificationEvent.FAILED: ("Request failed", "requests failed"),
    NotificationEvent.NEEDS_REVIEW: ("Request needs review", "requests need review"),
}


def plural_title(kind: NotificationEvent) -> str:
    """What follows the count in the title of several requests' notification."""
    return _EVENT_TITLES[kind][1]


def list_url(kind: NotificationEvent, base: str) -> str:
    """The moderation list filtered to the requests a notification of `kind` is about."""
    return f"{base}/history?tab={kind.value}"


def from_events(
    kind: NotificationEvent,
    events: Sequence[LedgerEvent],
    records: dict[str, LedgerRecord | None],
    *,
    base: str,
    now: float,
) -> Notification:
    """One notification for the events of one kind read in one batch (`coalesce` merges
    those of later batches into it while it waits to be sent)."""
    refs = [
        RequestRef(e.request_id, summary(e.request_id, records.get(e.request_id), e.reason),
                   request_url(base, e.request_id))
        for e in events
    ]  # fmt: skip
    one, many = _EVENT_TITLES[kind]
    title = f"{one}: {refs[0].summary}" if len(refs) == 1 else f"{len(refs)} {many}"
    shown, more = _cut(refs)
    url = refs[0].url if len(refs) == 1 else list_url(kind, base)
    return Notification(
        id=f"{kind.value}:{events[0].stream_id}",
        event=kind,
        title=title[:MAX_TEXT],
        url=url,
        created_at=now,
        requests=shown,
        more=more,
    )


def waiting(
    request_ids: Sequence[str],
    records: dict[str, LedgerRecord | None],
    *,
    base: str,
    minutes: float,
    now: float,
) -> Notification:
    """Requests pending longer than `minutes` that were not reported before."""
    refs = [RequestRef(i, summary(i, records.get(i)), request_url(base, i)) for i in request_ids]
    shown, more = _cut(refs)
    count = len(refs)
    noun = "request has" if count == 1 else "requests have"
    return Notification(
        id="waiting:" + hashlib.sha256(",".join(sorted(request_ids)).encode()).hexdigest()[:24],
        event=NotificationEvent.WAITING,
        title=f"{count} {noun} waited more than {minutes:g} min for a moderator",
        url=refs[0].url if count == 1 else f"{base}/queue",
        created_at=now,
        requests=shown,
        more=more,
    )


def reconnect(account: str, reason: str, *, base: str, now: float, episode: str) -> Notification:
    """An account whose refresh token X refused: only a person reconnecting it helps."""
    return Notification(
        id=f"reconnect:{account}:{episode}",
        event=NotificationEvent.RECONNECT,
        title=f"X account {account!r} needs reconnecting: {' '.join(reason.split())}"[:MAX_TEXT],
        url=f"{base}/accounts",
        created_at=now,
    )


def dead_letters(new: int, total: int, *, base: str, now: float) -> Notification:
    """New entries in write_queue:dead or the quarantine since the last look."""
    noun = "dead letter" if new == 1 else "dead letters"
    return Notification(
        id=f"dead_letter:{total}:{int(now)}",
        event=NotificationEvent.DEAD_LETTER,
        title=f"{new} new {noun} ({total} in all): a message could not be processed",
        url=f"{base}/dead-letters",
        created_at=now,
    )
