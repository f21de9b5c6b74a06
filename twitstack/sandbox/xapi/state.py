"""The fake X's whole mutable world, shared by the app, the inspection API and in-process tests."""

from __future__ import annotations

from typing import Literal

from twitstack.sandbox.xapi.auth import Authenticator
from twitstack.sandbox.xapi.clock import SandboxClock
from twitstack.sandbox.xapi.config import BillingMode, XApiSandboxConfig, default_rate_limits
from twitstack.sandbox.xapi.faults import FaultInjector
from twitstack.sandbox.xapi.media import MediaRegistry
from twitstack.sandbox.xapi.oauth_codes import AuthorizationCodes
from twitstack.sandbox.xapi.ratelimit import RateLimiter
from twitstack.sandbox.xapi.store import ContentStore
from twitstack.sandbox.xapi.tokens import TokenStore


class XApiState:
    """Content, credentials, rate-limit counts, faults and behaviour switches of one fake X.

    Built from an `XApiSandboxConfig`; `reset()` returns to that configuration but keeps the
    clock (time never runs backwards, so ids stay increasing). Nothing here awaits, so every
    method runs atomically on the event loop.
    """

    def __init__(
        self, config: XApiSandboxConfig | None = None, *, clock: SandboxClock | None = None
    ) -> None:
        self.config = config or XApiSandboxConfig()
        self.clock = clock or SandboxClock(
            start=self.config.clock_start, frozen=self.config.clock_frozen
        )
        self._load()

    def _load(self) -> None:
        config = self.config
        self.content = ContentStore(self.clock)
        self.media = MediaRegistry(
            self.clock,
            processing_polls=config.media_processing_polls,
            fail_processing=config.media_processing_fails,
        )
        self.check_media_ids: bool = config.check_media_ids
        for user in config.users:
            self.content.add_user(user)
        self.tokens = TokenStore(self.clock, access_ttl_s=config.access_token_ttl_s)
        for bearer in config.bearer_tokens:
            self.tokens.add_bearer(bearer)
        for refresh in config.refresh_tokens:
            self.tokens.add_refresh(refresh)
        for client in config.oauth2_clients:
            self.tokens.add_client(client)
        self.authorization = AuthorizationCodes()
        for credential in config.oauth1_credentials:
            self.tokens.add_oauth1(credential)
        self.authenticator = Authenticator(
            self.tokens, self.clock, max_skew_s=config.oauth1_max_skew_s
        )
        limits = {**default_rate_limits(), **config.rate_limits}
        self.limiter = RateLimiter(
            self.clock, limits, send_24hour_headers=config.send_24hour_headers
        )
        self.faults = FaultInjector(config.faults)
        self.billing: BillingMode = config.billing
        self.dm_read_enabled: bool = config.dm_read_enabled
        self.delete_unknown: Literal["not_found", "deleted_false"] = config.delete_unknown
        self.refresh_reuse_revokes_family: bool = config.refresh_reuse_revokes_family

    def reset(self) -> None:
        """Forget all content, tokens issued, counts, scripts and switches; keep the clock."""
        self._load()

    def summary(self) -> dict[str, object]:
        """Counts for the inspection API's front page."""
        return {
            "now": self.clock.now(),
            "posts": len(self.content.posts),
            "deleted_posts": len(self.content.deleted),
            "dms": len(self.content.dms),
            "media_uploads": self.media.uploads,
            "refresh_calls": self.tokens.counters.calls,
            "billing": self.billing.value,
            "dm_read_enabled": self.dm_read_enabled,
            "delete_unknown": self.delete_unknown,
            "scripted_pending": self.faults.pending(),
        }
