"""X's OAuth 2.0 endpoints for connecting an account: PKCE, code exchange, users/me, revoke.

The writer's own X client (`twitstack.writer.xapi_client`) posts and refreshes; connecting and
disconnecting happen in moderation and the CLI, which may not import the writer, so these
four calls have their home here. Every failure is an `XOAuthError` whose message is X's own
(`error_description`, or the problem's `detail`), never a token.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from twitstack.core.errors import TwitstackError

__all__ = [
    "ExchangedTokens",
    "XOAuthClient",
    "XOAuthError",
    "XUser",
    "authorize_url",
    "code_challenge",
    "new_code_verifier",
]


class XOAuthError(TwitstackError):
    """X refused an OAuth call, or could not be reached; `transient` when retrying may help."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False):
        super().__init__(message)
        self.status = status
        self.transient = transient


@dataclass(frozen=True)
class ExchangedTokens:
    """What the code exchange returned (the refresh token is "" without offline.access)."""

    access_token: str
    refresh_token: str
    expires_in_s: float
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class XUser:
    """GET /2/users/me's answer: the account the token acts as."""

    id: str
    username: str
    name: str


def new_code_verifier() -> str:
    """A PKCE verifier: 43-128 unreserved characters (RFC 7636 §4.1); 64 random URL-safe."""
    return secrets.token_urlsafe(48)


def code_challenge(verifier: str) -> str:
    """The S256 challenge of `verifier`."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(
    base: str, *, client_id: str, redirect_uri: str, scopes: tuple[str, ...], state: str,
    challenge: str,
) -> str:  # fmt: skip
    """The URL the user opens to consent (X: https://x.com/i/oauth2/authorize)."""
    query = {
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": " ".join(scopes), "state": state, "code_challenge": challenge,
        "code_challenge_method": "S256",
    }  # fmt: skip
    return f"{base}?{urlencode(query)}"


def _x_message(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return f"X answered {response.status_code}"
    if isinstance(body, dict):
        for field in ("error_description", "detail", "error", "title"):
            if isinstance(body.get(field), str):
                return f"X answered {response.status_code}: {body[field]}"
    return f"X answered {response.status_code}"


class XOAuthClient:
    """The four calls, over an httpx client the caller opens and closes."""

    def __init__(
        self, http: httpx.AsyncClient, *, api_base: str, client_id: str, client_secret: str | None
    ) -> None:
        self._http = http
        self._base = api_base.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret

    async def _post_form(self, path: str, form: dict[str, str]) -> httpx.Response:
        # Confidential clients authenticate with Basic; public ones name themselves in the body.
        auth: httpx.BasicAuth | None = None
        if self._client_secret:
            auth = httpx.BasicAuth(self._client_id, self._client_secret)
        else:
            form = {**form, "client_id": self._client_id}
        try:
            return await self._http.post(
                self._base + path, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT
            )
        except httpx.HTTPError as exc:
            raise XOAuthError(
                f"X could not be reached: {type(exc).__name__}", transient=True
            ) from None

    async def exchange(self, code: str, *, verifier: str, redirect_uri: str) -> ExchangedTokens:
        """grant_type=authorization_code; XOAuthError with X's message when refused."""
        response = await self._post_form(
            "/2/oauth2/token",
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
             "code_verifier": verifier},
        )  # fmt: skip
        if response.status_code != 200:
            raise XOAuthError(
                _x_message(response), status=response.status_code,
                transient=response.status_code >= 500 or response.status_code == 429,
            )  # fmt: skip
        body = response.json()
        return ExchangedTokens(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or ""),
            expires_in_s=float(body.get("expires_in", 7200)),
            scopes=tuple(str(body.get("scope", "")).split()),
        )

    async def me(self, access_token: str) -> XUser:
        """GET /2/users/me with the new access token."""
        try:
            response = await self._http.get(
                self._base + "/2/users/me", headers={"authorization": f"Bearer {access_token}"}
            )
        except httpx.HTTPError as exc:
            raise XOAuthError(
                f"X could not be reached: {type(exc).__name__}", transient=True
            ) from None
        if response.status_code != 200:
            raise XOAuthError(
                _x_message(response), status=response.status_code,
                transient=response.status_code >= 500 or response.status_code == 429,
            )  # fmt: skip
        data = response.json().get("data") or {}
        return XUser(
            id=str(data["id"]), username=str(data["username"]), name=str(data.get("name", ""))
        )

    async def revoke(self, token: str, *, hint: str) -> None:
        """POST /2/oauth2/revoke; XOAuthError when X refuses or cannot be reached."""
        response = await self._post_form(
            "/2/oauth2/revoke", {"token": token, "token_type_hint": hint}
        )
        if response.status_code != 200:
            raise XOAuthError(
                _x_message(response), status=response.status_code,
                transient=response.status_code >= 500 or response.status_code == 429,
            )  # fmt: skip
