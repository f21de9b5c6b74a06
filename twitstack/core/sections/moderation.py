"""Settings of the moderation service (its address is the seed's top-level api_host/api_port)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr


class ModerationSettings(BaseModel):
    """How the moderation web UI and JSON API behave."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    db_filename: str = Field(default="moderation.sqlite3", min_length=1)
    # Browsers refuse `__Host-` cookies without `Secure`, so plain-http development needs this
    # switched off explicitly; production keeps the default.
    secure_cookies: bool = True
    session_idle_timeout_s: int = Field(default=1800, gt=0)
    session_absolute_timeout_s: int = Field(default=43200, gt=0)
    login_window_s: int = Field(default=900, gt=0)
    login_max_failures_per_account: int = Field(default=10, gt=0)
    login_max_failures_per_ip: int = Field(default=100, gt=0)
    # argon2 checks running at once (64 MiB each); more wait their turn.
    password_check_concurrency: int = Field(default=2, gt=0, le=64)
    # Peers (addresses or networks) whose X-Forwarded-For is believed: the client address used
    # for throttling and the audit log is then the right-most forwarded address that is not
    # itself a trusted proxy. Empty: the header is ignored and the TCP peer is the client.
    trusted_proxies: tuple[IPvAnyNetwork, ...] = ()
    # Request bodies larger than this are refused with 413 before they are read; the
    # unauthenticated routes (login, API-key exchange) get the smaller limit.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_anonymous_body_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    # A body must arrive within this many seconds of the request's start, or the request is
    # answered 408 and the connection closed: a client trickling bytes holds a connection (and
    # a file descriptor) for as long as it likes otherwise, and uvicorn has no such limit.
    max_body_seconds: float = Field(default=30.0, gt=0, le=600)
    # The media uploads (POST /api/media, the New form with files) get this limit instead: a
    # video may be 512 MB (X's limit) plus the multipart framing, and may take longer.
    max_media_body_bytes: int = Field(default=520 * 1024 * 1024, ge=1024, le=2**31)
    max_media_body_seconds: float = Field(default=900.0, gt=0, le=7200)
    # Who may read /metrics on the UI port (which itself listens on api_host); loopback only
    # unless Prometheus scrapes from elsewhere and its network is listed here.
    metrics_allowed_networks: tuple[IPvAnyNetwork, ...] = (
        IPv4Network("127.0.0.0/8"),
        IPv6Network("::1/128"),
    )
    # HS256 key for API JWTs; generated into data_dir on first start when not given.
    jwt_secret: SecretStr | None = None
    jwt_audience: str = "twitstack-api"
    jwt_ttl_s: int = Field(default=900, gt=0, le=86400)
    # Ed25519 private key that signs approvals (base64 of 32 raw bytes, or PEM). When neither
    # this nor the file is set, a key is generated into data_dir on first start and its public
    # half logged, for the writer's `approval_public_keys`.
    approval_private_key: SecretStr | None = None
    approval_key_file: Path | None = None
    # Actions that need two distinct approvers before they go to the writer.
    two_person_actions: tuple[str, ...] = ()
    page_size: int = Field(default=50, gt=0, le=500)
    queue_refresh_interval_s: float = Field(default=5.0, gt=0)
    history_poll_block_ms: int = Field(default=1000, gt=0)
    idempotency_ttl_s: int = Field(default=86400, gt=0)
    # Where "view post" links point: `{id}` is replaced by the post id. The demo and sandbox
    # runs point it at the fake X's own post view, production at x.com.
    post_url_template: str = Field(
        default="https://x.com/i/web/status/{id}",
        pattern=r"^https?://[^\s{}]+\{id\}[^\s{}]*$",
        max_length=300,
    )
    # The reasons offered when rejecting (a moderator may still type their own).
    rejection_reasons: tuple[str, ...] = (
        "Off-brand tone or wording",
        "Factual claim needs a source",
        "Duplicate of another post",
        "X would refuse it (policy or reply rules)",
        "Wrong account",
        "Bad timing: hold for later",
    )
