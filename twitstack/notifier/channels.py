"""The channels a notification goes out on: Slack, a signed webhook, e-mail over SMTP.

Each `send` returns when the receiver took the notification and raises DeliveryError
otherwise; the error says whether trying again can help. Errors name what went wrong, never
the URL or credentials (a webhook URL is itself a secret).
"""

from __future__ import annotations

import contextlib
import email.policy
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from typing import Protocol

import anyio
import httpx

from twitstack.core.sections.notifier import EmailChannelSettings
from twitstack.notifier.models import Notification
from twitstack.notifier.render import email_message, slack_body, webhook_body
from twitstack.notifier.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)

# CRLF line ends; headers up to RFC 5322's 998 characters unfolded (folding a subject of 80
# characters put its first word on a line of its own, read back with a leading blank).
_SMTP_POLICY = email.policy.SMTP.clone(max_line_length=998)
# 4xx answers that a later attempt may get past: timeout, conflict, too early, rate limit.
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})


def _hang_up(opened: list[smtplib.SMTP]) -> None:
    """Shut down an abandoned SMTP connection: the worker thread's read fails at once."""
    for smtp in opened:
        sock = getattr(smtp, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class DeliveryError(Exception):
    """A channel did not take a notification; `retryable` False means retries cannot help."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Channel(Protocol):
    """One way of telling people."""

    name: str

    async def send(self, notification: Notification, delivery_id: str) -> None: ...


def url_problem(url: str) -> str | None:
    """Why `url` cannot be posted to (never quoting it: it is a secret), or None when it can."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "not a URL httpx can parse"
    if parsed.scheme not in {"http", "https"}:
        return "expected an http:// or https:// URL"
    if not parsed.host:
        return "expected a URL with a host"
    return None


async def _post(http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> None:
    # A malformed URL will be malformed on every attempt: retrying only delays the dead letter.
    problem = url_problem(url)
    if problem is not None:
        raise DeliveryError(f"invalid_url ({problem})", retryable=False)
    # Streamed and closed unread: the status is the whole answer, and a receiver must not
    # make the notifier buffer (or wait for) a body of any size.
    try:
        async with http.stream("POST", url, content=body, headers=headers) as response:
            status = response.status_code
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise DeliveryError(f"invalid_url ({type(exc).__name__})", retryable=False) from None
    except httpx.TimeoutException:
        raise DeliveryError("timeout") from None
    except httpx.HTTPError as exc:
        # The exception's text may quote the URL; its type says enough.
        raise DeliveryError(f"connection failed ({type(exc).__name__})") from None
    if 200 <= status < 300:
        return
    retryable = status >= 500 or status in _RETRYABLE_4XX
    raise DeliveryError(f"http_{status}", retryable=retryable)


class SlackChannel:
    """A Slack incoming webhook."""

    name = "slack"

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url

    async def send(self, notification: Notification, delivery_id: str) -> None:
        headers = {"Content-Type": "application/json"}
        await _post(self._http, self._url, slack_body(notification), headers)


class WebhookChannel:
    """Any HTTPS endpoint; every attempt signed afresh (twitstack.notifier.signing)."""

    name = "webhook"

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        key: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._url = url
        self._key = key
        self._clock = clock

    async def send(self, notification: Notification, delivery_id: str) -> None:
        body = webhook_body(notification, delivery_id)
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: delivery_id,
            EVENT_HEADER: notification.event.value,
            SIGNATURE_HEADER: signature_header(self._key, int(self._clock()), body),
        }
        await _post(self._http, self._url, body, headers)


class EmailChannel:
    """E-mail through an SMTP server; smtplib blocks, so it runs in a worker thread."""

    name = "email"

    def __init__(
        self, settings: EmailChannelSettings, password: str | None, *, timeout_s: float
    ) -> None:
        self._settings = settings
        self._password = password
        self._timeout_s = timeout_s

    async def send(self, notification: Notification, delivery_id: str) -> None:
        message = email_message(notification, sender=self._settings.from_address,
                                to=self._settings.to)  # fmt: skip
        opened: list[smtplib.SMTP] = []
        try:
            # abandon_on_cancel: a stop or the attempt's deadline must not wait for a hung
            # server. The socket timeout does not end the thread when a server answers a
            # byte at a time, so the connection is shut down under it (below).
            await anyio.to_thread.run_sync(
                self._send_blocking, message.as_bytes(policy=_SMTP_POLICY), opened,
                abandon_on_cancel=True,
            )  # fmt: skip
        except anyio.get_cancelled_exc_class():
            _hang_up(opened)
            raise
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError("recipients_refused", retryable=False) from None
        except smtplib.SMTPAuthenticationError:
            raise DeliveryError("authentication_failed", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"smtp_{exc.smtp_code}", retryable=exc.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"smtp failed ({type(exc).__name__})") from None

    def _send_blocking(self, message: bytes, opened: list[smtplib.SMTP]) -> None:
        config = self._settings
        context = ssl.create_default_context(cafile=config.ca_file)
        smtp: smtplib.SMTP
        # Connected after construction, so the caller can hang up while the greeting is read.
        if config.security == "tls":
            smtp = smtplib.SMTP_SSL(timeout=self._timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(timeout=self._timeout_s)
        # The name TLS verifies (SMTP_SSL's wrap, starttls) is only taken from the
        # constructor's host, which would also connect before the caller could see `smtp`.
        setattr(smtp, "_host", config.smtp_host)  # noqa: B010  # typeshed omits it
        opened.append(smtp)
        smtp.connect(config.smtp_host, config.smtp_port)
        with smtp:
            if config.security == "starttls":
                smtp.starttls(context=context)
            if config.username and self._password is not None:
                smtp.login(config.username, self._password)
            smtp.sendmail(config.from_address, list(config.to), message)
