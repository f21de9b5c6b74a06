"""Configuration of the fake X API: users, credentials, rate limits, behaviour switches, faults."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ALL_SCOPES: tuple[str, ...] = (
    "tweet.read",
    "tweet.write",
    "users.read",
    "dm.read",
    "dm.write",
    "media.write",
    "offline.access",
)


class Endpoint(StrEnum):
    """The endpoints the fake serves; the names key rate limits, faults and scripts."""

    CREATE_TWEET = "create_tweet"  # POST /2/tweets
    DELETE_TWEET = "delete_tweet"  # DELETE /2/tweets/{id}
    CREATE_DM = "create_dm"  # POST /2/dm_conversations/with/{participant_id}/messages
    USERS_ME = "users_me"  # GET /2/users/me
    USER_TWEETS = "user_tweets"  # GET /2/users/{id}/tweets
    DM_EVENTS = "dm_events"  # GET /2/dm_conversations/with/{participant_id}/dm_events
    OAUTH2_TOKEN = "oauth2_token"  # POST /2/oauth2/token
    OAUTH2_REVOKE = "oauth2_revoke"  # POST /2/oauth2/revoke (faults and scripts only)
    MEDIA_UPLOAD = "media_upload"  # POST /2/media/upload[/initialize|/{id}/append|/{id}/finalize]
    MEDIA_STATUS = "media_status"  # GET /2/media/upload?command=STATUS
    MEDIA_METADATA = "media_metadata"  # POST /2/media/metadata


class LimitScope(StrEnum):
    """Whose budget a window counts: one user's, or the whole app's."""

    USER = "user"
    APP = "app"


class WindowLimit(BaseModel):
    """A fixed window: `limit` requests per `window_s` seconds, counted per user or per app."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: LimitScope
    limit: int = Field(ge=0)
    window_s: float = Field(gt=0)


_15_MIN = 900.0
_24_H = 86_400.0


def default_rate_limits() -> dict[Endpoint, tuple[WindowLimit, ...]]:
    """X's documented windows per endpoint; config entries replace them one endpoint at a time."""
    # X's pay-per-usage table (research §3.4); the two GETs use the documented user/app
    # timeline and DM-lookup limits. The token endpoint is not rate limited here.
    user, app = LimitScope.USER, LimitScope.APP
    return {
        Endpoint.CREATE_TWEET: (WindowLimit(scope=user, limit=100, window_s=_15_MIN),
                                WindowLimit(scope=app, limit=10_000, window_s=_24_H)),
        Endpoint.DELETE_TWEET: (WindowLimit(scope=user, limit=50, window_s=_15_MIN),),
        Endpoint.CREATE_DM: (WindowLimit(scope=user, limit=15, window_s=_15_MIN),
                             WindowLimit(scope=user, limit=1_440, window_s=_24_H),
                             WindowLimit(scope=app, limit=1_440, window_s=_24_H)),
        Endpoint.USERS_ME: (WindowLimit(scope=user, limit=75, window_s=_15_MIN),),
        Endpoint.USER_TWEETS: (WindowLimit(scope=user, limit=900, window_s=_15_MIN),
                               WindowLimit(scope=app, limit=1_500, window_s=_15_MIN)),
        Endpoint.DM_EVENTS: (WindowLimit(scope=user, limit=300, window_s=_15_MIN),),
        # X's media upload windows (per user, 15 minutes; every chunked step counts).
        Endpoint.MEDIA_UPLOAD: (WindowLimit(scope=user, limit=500, window_s=_15_MIN),),
        Endpoint.MEDIA_STATUS: (WindowLimit(scope=user, limit=1_000, window_s=_15_MIN),),
        Endpoint.MEDIA_METADATA: (WindowLimit(scope=user, limit=500, window_s=_15_MIN),),
    }  # fmt: skip


class SandboxUser(BaseModel):
    """An X account known to the fake."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[0-9]{1,19}$")
    username: str
    name: str
    accepts_dms: bool = True


class BearerTokenSpec(BaseModel):
    """An access token: OAuth 2.0 user context, or app-only when `user_id` is None."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(min_length=1)
    user_id: str | None
    scopes: frozenset[str] = frozenset(ALL_SCOPES)
    expires_at: float | None = None  # epoch seconds on the sandbox clock; None = never
    client_id: str | None = None


class RefreshTokenSpec(BaseModel):
    """A refresh token the token endpoint will accept once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(min_length=1)
    user_id: str
    client_id: str
    scopes: frozenset[str] = frozenset(ALL_SCOPES)


class OAuth2ClientSpec(BaseModel):
    """An OAuth 2.0 client; a secret makes it confidential (Basic auth on the token endpoint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    client_secret: str | None = None


class OAuth1CredentialSpec(BaseModel):
    """OAuth 1.0a user-context keys; `read_only` models an app without write permission."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    consumer_key: str = Field(min_length=1)
    consumer_secret: str = Field(min_length=1)
    token: str = Field(min_length=1)
    token_secret: str = Field(min_length=1)
    user_id: str
    read_only: bool = False


class FaultKind(StrEnum):
    """What the fault injector can do to a request."""

    ERROR_500 = "error_500"
    ERROR_502 = "error_502"
    ERROR_503 = "error_503"
    ERROR_504 = "error_504"
    HTML_503 = "html_503"  # a CDN's HTML page, without rate-limit headers
    LATENCY = "latency"  # sleep `latency_s`, then handle the request normally
    RESET = "reset"  # drop the TCP connection without a response; nothing is stored
    COMMIT_THEN_503 = "commit_then_503"  # store the post/DM, then answer 503
    COMMIT_THEN_TIMEOUT = "commit_then_timeout"  # store, then sleep `latency_s` before answering
    COMMIT_THEN_RESET = "commit_then_reset"  # store, then drop the connection
    PARTIAL_ERRORS = "partial_errors"  # handle normally, add an `errors` array to the body
    PASS = "pass"  # handle normally: a script's way to fault the n-th request, not the next


class FaultSettings(BaseModel):
    """Probability-driven faults, drawn from a seeded `random.Random`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rates: dict[FaultKind, float] = Field(default_factory=dict)
    endpoints: frozenset[Endpoint] = frozenset(
        {Endpoint.CREATE_TWEET, Endpoint.DELETE_TWEET, Endpoint.CREATE_DM}
    )
    latency_s: float = Field(default=30.0, ge=0)
    seed: int = 0

    @model_validator(mode="after")
    def _rates_are_probabilities(self) -> FaultSettings:
        if any(not 0.0 <= rate <= 1.0 for rate in self.rates.values()):
            raise ValueError("each fault rate must be between 0 and 1")
        if sum(self.rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates add up to {sum(self.rates.values())}, more than 1")
        return self


class BillingMode(StrEnum):
    """The account's spending state: fine, capped (429 usage-capped) or out of credits (402)."""

    OK = "ok"
    USAGE_CAPPED = "usage_capped"
    CREDITS_DEPLETED = "credits_depleted"


def _default_users() -> tuple[SandboxUser, ...]:
    return (
        SandboxUser(id="1000", username="twitstack_demo", name="twitstack demo"),
        SandboxUser(id="1001", username="twitstack_friend", name="twitstack friend"),
        SandboxUser(id="1002", username="twitstack_closed", name="closed DMs", accepts_dms=False),
    )


DEFAULT_BEARER_TOKEN = "sandbox-user-1000-token"
DEFAULT_REFRESH_TOKEN = "sandbox-user-1000-refresh"
DEFAULT_CLIENT_ID = "sandbox-client"


class XApiSandboxConfig(BaseModel):
    """Everything that shapes the fake's behaviour; the defaults give a working demo account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: tuple[SandboxUser, ...] = Field(default_factory=_default_users)
    bearer_tokens: tuple[BearerTokenSpec, ...] = (
        BearerTokenSpec(token=DEFAULT_BEARER_TOKEN, user_id="1000", client_id=DEFAULT_CLIENT_ID),
    )
    refresh_tokens: tuple[RefreshTokenSpec, ...] = (
        RefreshTokenSpec(token=DEFAULT_REFRESH_TOKEN, user_id="1000", client_id=DEFAULT_CLIENT_ID),
    )
    oauth2_clients: tuple[OAuth2ClientSpec, ...] = (OAuth2ClientSpec(client_id=DEFAULT_CLIENT_ID),)
    oauth1_credentials: tuple[OAuth1CredentialSpec, ...] = (
        OAuth1CredentialSpec(
            consumer_key="sandbox-consumer-key",
            consumer_secret="sandbox-consumer-secret",
            token="1000-sandbox-access-token",
            token_secret="sandbox-access-token-secret",
            user_id="1000",
        ),
    )
    access_token_ttl_s: float = Field(default=7200.0, gt=0)  # X: two hours
    refresh_reuse_revokes_family: bool = False  # reuse of a spent refresh token kills its family
    oauth1_max_skew_s: float | None = None  # None: no timestamp check (tests advance the clock)
    # Overrides of `default_rate_limits()` per endpoint; an empty tuple means unlimited.
    rate_limits: dict[Endpoint, tuple[WindowLimit, ...]] = Field(default_factory=dict)
    send_24hour_headers: bool = True  # x-user-limit-24hour-* / x-app-limit-24hour-*
    duplicate_window_s: float = Field(default=86_400.0, ge=0)  # X does not document it
    duplicate_lookback_posts: int = Field(default=200, ge=0)
    invalid_text_status: Literal[400, 403] = 400  # X's status for bad text is undocumented
    delete_unknown: Literal["not_found", "deleted_false"] = "not_found"
    dm_read_enabled: bool = True  # False models an app without dm.read access
    billing: BillingMode = BillingMode.OK
    # A post naming a media id that is unknown, another user's, unprocessed or expired is
    # refused with 400, as X does; False accepts any id (for producers' own media_ids).
    check_media_ids: bool = True
    # STATUS polls after FINALIZE until a video or GIF is processed (pending, in_progress...).
    media_processing_polls: int = Field(default=2, ge=1, le=100)
    media_processing_fails: bool = False  # processing ends in `failed` instead
    faults: FaultSettings = Field(default_factory=FaultSettings)
    clock_start: float | None = None  # epoch seconds; None = now
    clock_frozen: bool = False
