"""A notification as text: one message for Slack and e-mail, one JSON body for webhooks."""

from __future__ import annotations

import hashlib
import json
from email.message import EmailMessage

from twitstack.notifier.models import Notification


def plain_text(notification: Notification) -> str:
    """Title, the main link, then one line per request with its own link."""
    lines = [notification.title, notification.url]
    for ref in notification.requests:
        lines.append(f"- {ref.summary} {ref.url}")
    if notification.more:
        lines.append(f"- and {notification.more} more: {notification.url}")
    return "\n".join(lines)


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats &, < and > as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(notification: Notification) -> bytes:
    """An incoming-webhook message: the title linked to the page, a line per request."""
    lines = [f"*<{notification.url}|{_slack_escape(notification.title)}>*"]
    for ref in notification.requests:
        lines.append(f"• <{ref.url}|{_slack_escape(ref.summary)}>")
    if notification.more:
        lines.append(f"• <{notification.url}|and {notification.more} more>")
    text = "\n".join(lines)
    return json.dumps({"text": text, "unfurl_links": False}).encode("utf-8")


def webhook_body(notification: Notification, delivery_id: str) -> bytes:
    """The JSON a generic webhook receives (documented in docs/notifications.md)."""
    body = {"delivery_id": delivery_id, **notification.to_dict()}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def email_message(notification: Notification, *, sender: str, to: tuple[str, ...]) -> EmailMessage:
    """A plain-text e-mail whose subject is the title."""
    message = EmailMessage()
    message["Subject"] = f"[twitstack] {notification.title}"[:200]
    message["From"] = sender
    message["To"] = ", ".join(to)
    # Stable per notification: a repeat delivery (at least once) threads as the same mail.
    digest = hashlib.sha256(notification.id.encode("utf-8")).hexdigest()[:32]
    message["Message-ID"] = f"<{digest}@twitstack.notifier>"
    message.set_content(plain_text(notification) + "\n")
    return message
