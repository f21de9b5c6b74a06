"""What the notifier sends: a notification, and one delivery of it to one channel."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from twitstack.core.sections.notifier import NotificationEvent
from twitstack.writes.errors import UnreadableError

MAX_TEXT = 300  # per summary line: a notification points at the request, it does not hold it


@dataclass(frozen=True, slots=True)
class RequestRef:
    """One request a notification is about, with the link that opens it."""

    request_id: str
    summary: str
    url: str


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing to tell people; `id` is stable, so scheduling it twice schedules it once."""

    id: str
    event: NotificationEvent
    title: str
    url: str  # the main link: the request's page, or the list to look at
    created_at: float
    requests: tuple[RequestRef, ...] = ()
    more: int = 0  # requests left out of `requests` (a long list is cut)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event": self.event.value,
            "title": self.title,
            "url": self.url,
            "created_at": self.created_at,
            "requests": [
                {"id": r.request_id, "summary": r.summary, "url": r.url} for r in self.requests
            ],
            "more": self.more,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Notification:
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        requests = data.get("requests", [])
        if not isinstance(requests, list):
            raise TypeError("requests: expected an array")
        return cls(
            id=_text(data, "id"),
            event=NotificationEvent(data["event"]),
            title=_text(data, "title"),
            url=_text(data, "url"),
            created_at=float(data["created_at"]),
            requests=tuple(
                RequestRef(_text(r, "id"), _text(r, "summary"), _text(r, "url")) for r in requests
            ),
            more=int(data.get("more", 0)),
        )


def _text(data: Any, name: str) -> str:
    if not isinstance(data, dict):
        raise TypeError(f"expected an object, got {type(data).__name__}")
    value = data[name]
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Delivery:
    """A notification on its way to one channel, with the attempts made so far."""

    notification: Notification
    channel: str
    attempts: int = 0
    last_error: str = ""

    @property
    def id(self) -> str:
        return delivery_id(self.notification.id, self.channel)

    def failed(self, error: str) -> Delivery:
        return replace(self, attempts=self.attempts + 1, last_error=error[:MAX_TEXT])

    def to_json(self) -> str:
        return json.dumps(
            {
                "channel": self.channel,
                "attempts": self.attempts,
                "last_error": self.last_error,
                "notification": self.notification.to_dict(),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, ref: str, raw: bytes | str) -> Delivery:
        """A delivery from its stored JSON; UnreadableError if it is not one."""
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise TypeError(f"expected an object, got {type(data).__name__}")
            channel = data["channel"]
            if not isinstance(channel, str):
                raise TypeError("channel: expected a string")
            return cls(
                notification=Notification.from_dict(data["notification"]),
                channel=channel,
                attempts=int(data.get("attempts", 0)),
                last_error=str(data.get("last_error", ""))[:MAX_TEXT],
            )
        except (KeyError, ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            # ArithmeticError: JSON's `1e999` is inf, which int() cannot take (OverflowError);
            # RecursionError: deeply nested JSON. Both are junk, not a crash of the batch.
            detail = f"{type(exc).__name__}: {exc}"[:300]
            raise UnreadableError("notification", ref, "malformed_notification", detail) from None


def delivery_id(notification_id: str, channel: str) -> str:
    """The outbox id of `notification_id` on `channel`."""
    return f"{notification_id}|{channel}"
