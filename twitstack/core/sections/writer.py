"""The writer's settings section: X accounts, concurrency, timeouts, approval, reconciliation."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator


class XAccountSettings(BaseModel):
    """One X account the writer can act as; secret fields hold secret *names*, never values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    user_id: str = Field(pattern=r"^[0-9]{1,19}$")
    auth: Literal["oauth2", "oauth1"] = "oauth2"
    # OAuth 2.0 user context: the client id may be public, so it is a plain value.
    client_id: str | None = None
    client_secret_secret: str | None = None  # set for confidential clients (Basic auth)
    access_token_secret: str | None = None
    refresh_token_secret: str | None = None
    # OAuth 1.0a user context (access_token_secret above is the OAuth1 access token).
    consumer_key_secret: str | None = None
    consumer_secret_secret: str | None = None
    token_secret_secret: str | None = None
    # Whether DMs sent by this account can be read back (dm.read scope) to reconcile them.
    dm_read_back: bool = True
    # The account's X handle (without "@"), shown beside `name` in the moderation UI.
    handle: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,15}$")

    @property
    def connected(self) -> bool:
        """Whether the account was connected from the UI or CLI (not configured in TOML)."""
        return False

    @model_validator(mode="after")
    def _secrets_for_auth(self) -> Self:
        if self.auth == "oauth2":
            needed = {"access_token_secret": self.access_token_secret}
        else:
            needed = {
                "consumer_key_secret": self.consumer_key_secret,
                "consumer_secret_secret": self.consumer_secret_secret,
                "access_token_secret": self.access_token_secret,
                "token_secret_secret": self.token_secret_secret,
            }
        missing = [field for field, value in needed.items() if not value]
        if missing:
            raise ValueError(f"auth={self.auth} needs {', '.join(missing)}")
        return self


class ConnectedAccountSettings(XAccountSettings):
    """An account connected from the UI or CLI (twitstack.writes.x_accounts), never TOML: its
    pair is in the sealed store from the start, so it names no secrets."""

    @property
    def connected(self) -> bool:
        return True

    @model_validator(mode="after")
    def _secrets_for_auth(self) -> Self:  # replaces the TOML account's check
        return self


class WriterSettings(BaseModel):
    """How the writer consumes `write_queue` and talks to X."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x_api_base_url: str = "https://api.x.com"
    accounts: tuple[XAccountSettings, ...] = ()
    default_account: str = "default"
    concurrency: int = Field(default=4, ge=1, le=48)  # each idle worker holds a Redis connection
    # Stable id of this replica's queue consumer ("<host>-writer-<n>"); None = host and PID,
    # which works but lets a restarted process's in-flight messages wait for the heartbeat TTL.
    consumer_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,100}$")
    take_timeout_s: float = Field(default=1.0, gt=0, le=10)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=20.0, gt=0)
    # The workers' HTTP transport: "lean" (one keep-alive HTTP/1.1 connection each, far less
    # CPU per call; httpx's own where a proxy is configured or off asyncio) or "httpx".
    http_transport: Literal["lean", "httpx"] = "lean"
    metrics_port: int | None = Field(default=9102, ge=0, le=65535)
    require_approval: bool = True
    # Ed25519 public keys (base64 of the 32 raw bytes) of the moderation service's signers.
    approval_public_keys: tuple[str, ...] = ()
    approval_max_age_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    # Wait this long after an ambiguous attempt before deciding a tweet is absent.
    reconcile_grace_s: float = Field(default=60.0, ge=0)
    reconcile_interval_s: float = Field(default=5.0, gt=0)
    # A read-back post matches an ambiguous attempt only if X created it between the attempt's
    # start and end, widened by this much each side (clock skew, a commit just after timeout).
    reconcile_window_slack_s: float = Field(default=10.0, ge=0)
    max_resend_cycles: int = Field(default=3, ge=0, le=10)
    # A request still `sending` this long after its attempt began is abandoned whoever holds
    # it (a backstop: one left by this consumer id's previous run, or by a replica whose
    # heartbeat lapsed, is taken at once). Must exceed the longest live attempt.
    stale_sending_s: float = Field(default=300.0, gt=0)
    # How often requests of a paused account look again whether it was resumed.
    paused_recheck_s: float = Field(default=60.0, gt=0)
    schedule_poll_s: float = Field(default=0.5, gt=0)
    # Seconds added to X's reset time before a rate-limited request is sent again.
    rate_limit_margin_s: float = Field(default=1.0, ge=0)
    rate_limit_jitter_s: float = Field(default=1.0, ge=0)
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    heartbeat_ttl_s: float = Field(default=30.0, gt=0)
    recovery_interval_s: float = Field(default=10.0, gt=0)
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    token_refresh_leeway_s: float = Field(default=60.0, ge=0)
    transient_attempts: int = Field(default=5, ge=1, le=20)
    transient_retry_s: float = Field(default=5.0, ge=0)
    redis_backoff_max_s: float = Field(default=10.0, gt=0)
    # The shared ledger: how long executed/failed/rejected/expired requests are kept, and the
    # approximate cap of the `writes:events` stream (oldest events dropped first). Every
    # service that writes the ledger (writer, moderation) uses these two values.
    ledger_retention_s: int = Field(default=30 * 24 * 3600, ge=3600)
    events_maxlen: int = Field(default=500_000, ge=1000)
    # The X app that accounts are connected to from the UI or CLI (OAuth 2.0 with PKCE).
    # client_id may be public; a confidential client's secret is named, never given.
    oauth2_client_id: str | None = None
    oauth2_client_secret_secret: str | None = None
    # Where X sends the user back: moderation's /accounts/x/callback as the browser reaches it
    # (the public https URL behind a reverse proxy); registered in the X developer portal.
    oauth2_redirect_uri: str | None = None
    x_authorize_url: str = "https://x.com/i/oauth2/authorize"
    # Accounts connected from the UI or CLI, merged in by the writer (TOML names win).
    _connected: dict[str, XAccountSettings] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_accounts(self) -> Self:
        names = [account.name for account in self.accounts]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate account names: {', '.join(duplicates)}")
        if self.heartbeat_ttl_s <= self.heartbeat_interval_s:
            raise ValueError("heartbeat_ttl_s must be longer than heartbeat_interval_s")
        if self.ledger_retention_s < self.approval_max_age_s:
            # Once the ledger forgets an id (and its tombstone), a re-pushed message must carry
            # an approval too old to verify, or it would be executed a second time.
            raise ValueError(
                f"ledger_retention_s ({self.ledger_retention_s}) must be at least "
                f"approval_max_age_s ({self.approval_max_age_s:g})"
            )
        return self

    def account(self, name: str | None) -> XAccountSettings | None:
        """The account called `name` (the default account when None): TOML, then connected."""
        wanted = name or self.default_account
        configured = next((a for a in self.accounts if a.name == wanted), None)
        return configured if configured is not None else self._connected.get(wanted)

    def use_connected(self, accounts: list[XAccountSettings]) -> None:
        """Replace the connected accounts `account()` also finds (TOML names are skipped)."""
        configured = {a.name for a in self.accounts}
        self._connected = {a.name: a for a in accounts if a.name not in configured}

    def connected_accounts(self) -> list[XAccountSettings]:
        """The connected accounts last passed to `use_connected`."""
        return list(self._connected.values())
