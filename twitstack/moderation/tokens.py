"""Short-lived API JWTs (PyJWT, HS256 only, exp/iat/aud required) minted from API keys."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from twitstack.moderation.apikeys import ApiKey

Clock = Callable[[], float]
# An allow-list of exactly one: "none" and RS/HS confusion are refused by construction.
ALGORITHMS = ("HS256",)


class TokenError(ValueError):
    """A bearer token was refused; the message is safe to show (no token material)."""


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says: the user, the API key it came from and its scopes."""

    user_id: int
    key_id: int
    scopes: tuple[str, ...]
    expires_at: float


class TokenIssuer:
    """Mint and verify JWTs for one audience with one secret."""

    def __init__(self, secret: bytes, *, audience: str, ttl_s: int, clock: Clock) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must be at least 32 bytes")
        self._secret = secret
        self._audience = audience
        self._ttl_s = ttl_s
        self._clock = clock

    @property
    def ttl_s(self) -> int:
        return self._ttl_s

    def issue(self, key: ApiKey) -> str:
        """A token acting as `key`'s owner with `key`'s scopes."""
        now = int(self._clock())
        claims = {
            "sub": str(key.owner_id),
            "akid": key.id,
            "scope": " ".join(key.scopes),
            "aud": self._audience,
            "iat": now,
            "exp": now + self._ttl_s,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHMS[0])

    def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; TokenError for anything else."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=list(ALGORITHMS),
                audience=self._audience,
                options={"require": ["exp", "iat", "aud", "sub"]},
                # PyJWT compares exp with the wall clock; our clock may be a test clock.
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.PyJWTError:
            raise TokenError("invalid token") from None
        try:
            result = TokenClaims(
                user_id=int(claims["sub"]),
                key_id=int(claims["akid"]),
                scopes=tuple(str(claims.get("scope", "")).split()),
                expires_at=float(claims["exp"]),
            )
        except (KeyError, TypeError, ValueError):
            raise TokenError("invalid token") from None
        if result.expires_at <= self._clock():
            raise TokenError("token expired")
        return result
