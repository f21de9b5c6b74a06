"""Settings of the notifier: which events go to which channel (Slack, signed webhook, e-mail)."""

from __future__ import annotations

import enum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class NotificationEvent(enum.StrEnum):
    """What a notification can be about."""

    WAITING = "waiting"  # a request has waited for a moderator longer than waiting_after_min
    FAILED = "failed"  # X refused a request for good
    NEEDS_REVIEW = "needs_review"  # the writer handed a request back to a person
    RECONNECT = "reconnect"  # X refused an account's refresh token: reconnect it
    DEAD_LETTER = "dead_letter"  # new entries in write_queue:dead or the quarantine


ALL_EVENTS = tuple(NotificationEvent)


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The event kinds this channel receives; empty switches the channel off.
    events: tuple[NotificationEvent, ...] = ALL_EVENTS


class SlackChannelSettings(_Channel):
    """A Slack incoming webhook; its URL is a secret (anyone holding it can post)."""

    webhook_url_secret: str = Field(min_length=1)


class WebhookChannelSettings(_Channel):
    """A generic HTTPS endpoint; each delivery signed with HMAC-SHA256 (docs/notifications.md)."""

    url_secret: str = Field(min_length=1)
    signing_key_secret: str = Field(min_length=1)


class EmailChannelSettings(_Channel):
    """E-mail over SMTP (Python's smtplib)."""

    smtp_host: str = Field(min_length=1)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # starttls: plain connect then STARTTLS (port 587); tls: TLS from the start (465);
    # none: no encryption, for a relay on loopback only.
    security: Literal["starttls", "tls", "none"] = "starttls"
    # A PEM bundle of the CAs that may sign the server's certificate, instead of the system's
    # (a company CA). The certificate and its host name are always verified.
    ca_file: str | None = None
    username: str | None = None
    password_secret: str | None = None
    from_address: str = Field(min_length=3)
    to: tuple[str, ...] = Field(min_length=1)

    @field_validator("from_address", "to")
    @classmethod
    def _addresses(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        for address in (value,) if isinstance(value, str) else value:
            if "@" not in address or any(c in address for c in "\r\n<>,; "):
                raise ValueError(
                    f"expected an e-mail address like ops@example.com, got {address!r}"
                )
        return value

    @model_validator(mode="after")
    def _login_needs_password(self) -> Self:
        if self.username and not self.password_secret:
            raise ValueError("username is set: name the SMTP password's secret in password_secret")
        if self.username and self.security == "none":
            raise ValueError(
                'security = "none" would send the SMTP password unencrypted: use "starttls" '
                'or "tls" with a login'
            )
        return self


class NotifierSettings(BaseModel):
    """Outbound notifications; a channel is on when its section is present."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Links in notifications point here: `<moderation_base_url>/requests/<id>`.
    moderation_base_url: str | None = None
    # The supervisor serves the notifier's /metrics here (None: not served, 0: any free port).
    metrics_port: int | None = Field(default=9104, ge=0, le=65535)
    # A pending request older than this is reported as waiting (once per request).
    waiting_after_min: float = Field(default=30.0, gt=0, le=10080)
    # How often waiting requests, reconnect flags and dead letters are looked at.
    check_interval_s: float = Field(default=60.0, gt=0, le=3600)
    # A delivery is retried with exponential backoff, then dead-lettered after max_attempts.
    max_attempts: int = Field(default=8, ge=1, le=100)
    retry_initial_s: float = Field(default=10.0, gt=0, le=3600)
    retry_max_s: float = Field(default=900.0, gt=0, le=86400)
    delivery_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Deliveries in flight at once (all channels together).
    concurrency: int = Field(default=4, ge=1, le=64)
    # At most one message per channel and event kind (failed, needs_review) in this window:
    # events arriving meanwhile are added to the next message (an exact count, the first
    # requests linked, and a link to the filtered list). 0 sends each batch as it is read.
    coalesce_window_s: float = Field(default=60.0, ge=0, le=3600)
    slack: SlackChannelSettings | None = None
    webhook: WebhookChannelSettings | None = None
    email: EmailChannelSettings | None = None

    @field_validator("moderation_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")) or "@" in value:
            raise ValueError(f"expected an http(s) URL without credentials, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _links_need_base_url(self) -> Self:
        if self.channels() and self.moderation_base_url is None:
            raise ValueError(
                "a channel is configured: set moderation_base_url so notifications can link "
                "to the request (e.g. https://moderation.example.com)"
            )
        return self

    def channels(self) -> dict[str, _Channel]:
        """The configured channels that receive at least one event kind, by name."""
        found: dict[str, _Channel | None] = {
            "slack": self.slack, "webhook": self.webhook, "email": self.email,
        }  # fmt: skip
        return {name: ch for name, ch in found.items() if ch is not None and ch.events}

    @property
    def enabled(self) -> bool:
        return bool(self.channels())
