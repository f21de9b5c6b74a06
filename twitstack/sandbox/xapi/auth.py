"""Who is calling: bearer tokens (OAuth 2.0 user or app-only) and verified OAuth 1.0a signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from starlette.requests import Request

from twitstack.sandbox.xapi import problems
from twitstack.sandbox.xapi.clock import SandboxClock
from twitstack.sandbox.xapi.tokens import TokenStore

_OAUTH_PARAM = re.compile(r'([A-Za-z0-9_]+)="([^"]*)"')
_FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; `user_id` is None for app-only bearer tokens."""

    user_id: str | None
    scopes: frozenset[str]
    kind: str  # "oauth2", "oauth1" or "app"
    read_only: bool = False


def _encode(value: str) -> str:
    # RFC 5849 §3.6: everything but unreserved characters is percent-encoded.
    return quote(value, safe="~")


def _base_string_uri(request: Request) -> str:
    url = request.url
    scheme = url.scheme.lower()
    host = (url.hostname or "").lower()
    default_port = {"http": 80, "https": 443}.get(scheme)
    port = f":{url.port}" if url.port is not None and url.port != default_port else ""
    return f"{scheme}://{host}{port}{url.path}"


def signature_base_string(request: Request, oauth_params: dict[str, str], body: bytes) -> str:
    """The RFC 5849 §3.4.1 base string for `request` (form bodies count, JSON bodies do not)."""
    pairs: list[tuple[str, str]] = list(request.query_params.multi_items())
    pairs += [(k, v) for k, v in oauth_params.items() if k not in ("oauth_signature", "realm")]
    if request.headers.get("content-type", "").split(";")[0].strip() == _FORM_TYPE:
        pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    normalized = "&".join(
        f"{name}={value}" for name, value in sorted((_encode(n), _encode(v)) for n, v in pairs)
    )
    method = request.method.upper()
    return f"{method}&{_encode(_base_string_uri(request))}&{_encode(normalized)}"


def hmac_sha1_signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    """Base64 HMAC-SHA1 of the base string, keyed by the two encoded secrets."""
    key = f"{_encode(consumer_secret)}&{_encode(token_secret)}".encode()
    digest = hmac.new(key, base_string.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def parse_oauth_header(value: str) -> dict[str, str]:
    """The decoded `oauth_*` parameters of an `Authorization: OAuth ...` header."""
    return {name: unquote(raw) for name, raw in _OAUTH_PARAM.findall(value[len("OAuth ") :])}


class Authenticator:
    """Turns a request's Authorization header into a `Principal`, or None (→ 401)."""

    def __init__(
        self, tokens: TokenStore, clock: SandboxClock, *, max_skew_s: float | None
    ) -> None:
        self._tokens = tokens
        self._clock = clock
        self._max_skew_s = max_skew_s

    def authenticate(self, request: Request, body: bytes) -> Principal | None:
        """The caller, if the header carries a live bearer token or a valid OAuth1 signature."""
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            return self._bearer(header[len("Bearer ") :].strip())
        if header.startswith("OAuth "):
            return self._oauth1(request, parse_oauth_header(header), body)
        return None

    def _bearer(self, token: str) -> Principal | None:
        spec = self._tokens.live_bearer(token)
        if spec is None:
            return None
        kind = "app" if spec.user_id is None else "oauth2"
        return Principal(user_id=spec.user_id, scopes=spec.scopes, kind=kind)

    def _oauth1(self, request: Request, params: dict[str, str], body: bytes) -> Principal | None:
        if params.get("oauth_signature_method") != "HMAC-SHA1":
            return None
        if params.get("oauth_version", "1.0") != "1.0":
            return None
        key = (params.get("oauth_consumer_key", ""), params.get("oauth_token", ""))
        credential = self._tokens.oauth1.get(key)
        timestamp, nonce = params.get("oauth_timestamp", ""), params.get("oauth_nonce", "")
        if credential is None or not timestamp.isdigit() or not nonce:
            return None
        if self._max_skew_s is not None and abs(self._clock.now() - int(timestamp)) > (
            self._max_skew_s
        ):
            return None
        expected = hmac_sha1_signature(
            signature_base_string(request, params, body),
            credential.consumer_secret,
            credential.token_secret,
        )
        if not hmac.compare_digest(expected, params.get("oauth_signature", "")):
            return None
        # A replayed nonce is rejected only after the signature checks out, so a forged
        # request cannot burn a legitimate client's nonce.
        if not self._tokens.remember_nonce((*key, timestamp, nonce)):
            return None
        # OAuth1 user tokens carry every permission the app has; scopes do not apply.
        return Principal(
            user_id=credential.user_id,
            scopes=frozenset({"*"}),
            kind="oauth1",
            read_only=credential.read_only,
        )


def authorization_problem(
    principal: Principal, required_scopes: Iterable[str], *, write: bool
) -> dict[str, Any] | None:
    """The 403 body when an authenticated caller may not use the endpoint, else None."""
    if principal.kind == "app":
        return problems.UNSUPPORTED_AUTHENTICATION
    if principal.kind == "oauth1":
        return problems.OAUTH1_PERMISSIONS if write and principal.read_only else None
    if not set(required_scopes) <= principal.scopes:
        return problems.FORBIDDEN
    return None
