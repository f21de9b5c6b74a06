"""The fake's credential store: access and refresh tokens, OAuth clients, OAuth1 keys."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from twitstack.sandbox.xapi.clock import SandboxClock
from twitstack.sandbox.xapi.config import (
    BearerTokenSpec,
    OAuth1CredentialSpec,
    OAuth2ClientSpec,
    RefreshTokenSpec,
)


@dataclass
class RefreshRecord:
    """A refresh token; `family` groups every token descended from the same grant."""

    spec: RefreshTokenSpec
    family: str
    used: bool = False


@dataclass(frozen=True)
class IssuedPair:
    """What a successful refresh hands out."""

    access: BearerTokenSpec
    refresh: RefreshTokenSpec
    expires_in: int


@dataclass
class RefreshCounters:
    """Token-endpoint traffic, so tests can assert "exactly one refresh"."""

    calls: int = 0
    succeeded: int = 0
    rejected: int = 0


@dataclass
class TokenStore:
    """Every credential the fake accepts; mutations never await, so they are atomic."""

    clock: SandboxClock
    access_ttl_s: float
    bearer: dict[str, BearerTokenSpec] = field(default_factory=dict)
    bearer_family: dict[str, str] = field(default_factory=dict)
    refresh: dict[str, RefreshRecord] = field(default_factory=dict)
    clients: dict[str, OAuth2ClientSpec] = field(default_factory=dict)
    oauth1: dict[tuple[str, str], OAuth1CredentialSpec] = field(default_factory=dict)
    seen_nonces: set[tuple[str, str, str, str]] = field(default_factory=set)
    revoked_families: set[str] = field(default_factory=set)
    counters: RefreshCounters = field(default_factory=RefreshCounters)

    def add_bearer(self, spec: BearerTokenSpec, family: str | None = None) -> None:
        """Accept `spec.token` as a bearer token."""
        self.bearer[spec.token] = spec
        self.bearer_family[spec.token] = family or f"family-{spec.token}"

    def add_refresh(self, spec: RefreshTokenSpec, family: str | None = None) -> None:
        """Accept `spec.token` once on the token endpoint."""
        self.refresh[spec.token] = RefreshRecord(spec, family or f"family-{spec.token}")

    def add_client(self, spec: OAuth2ClientSpec) -> None:
        """Register an OAuth 2.0 client."""
        self.clients[spec.client_id] = spec

    def add_oauth1(self, spec: OAuth1CredentialSpec) -> None:
        """Accept an OAuth 1.0a consumer key + access token pair."""
        self.oauth1[(spec.consumer_key, spec.token)] = spec

    def live_bearer(self, token: str) -> BearerTokenSpec | None:
        """The token's grant if it is known, unexpired and its family not revoked."""
        spec = self.bearer.get(token)
        if spec is None or self.bearer_family.get(token) in self.revoked_families:
            return None
        if spec.expires_at is not None and self.clock.now() >= spec.expires_at:
            return None
        return spec

    def expire_bearer(self, token: str) -> None:
        """Make a bearer token expire now (tests of the 401 → refresh path)."""
        spec = self.bearer[token]
        self.bearer[token] = spec.model_copy(update={"expires_at": self.clock.now()})

    def rotate(self, refresh_token: str, client_id: str) -> IssuedPair | None:
        """Spend a refresh token for a new pair; None when it is unknown, spent or revoked."""
        record = self.refresh.get(refresh_token)
        if record is None or record.spec.client_id != client_id:
            return None
        if record.used or record.family in self.revoked_families:
            return None
        record.used = True
        ttl = int(self.access_ttl_s)
        access = BearerTokenSpec(
            token=secrets.token_urlsafe(32),
            user_id=record.spec.user_id,
            scopes=record.spec.scopes,
            expires_at=self.clock.now() + ttl,
            client_id=client_id,
        )
        new_refresh = record.spec.model_copy(update={"token": secrets.token_urlsafe(32)})
        self.add_bearer(access, record.family)
        self.add_refresh(new_refresh, record.family)
        return IssuedPair(access=access, refresh=new_refresh, expires_in=ttl)

    def was_spent(self, refresh_token: str) -> str | None:
        """The family of a refresh token that has been used already, else None."""
        record = self.refresh.get(refresh_token)
        return record.family if record is not None and record.used else None

    def remember_nonce(self, key: tuple[str, str, str, str]) -> bool:
        """Record an OAuth1 (consumer, token, timestamp, nonce); False if it was seen before."""
        if key in self.seen_nonces:
            return False
        self.seen_nonces.add(key)
        return True
