"""Connecting an X account: start (state + S256 challenge), finish (callback), disconnect.

Used by moderation's Accounts pages and by `twitstack x-accounts`. The state and verifier are
kept in Redis for `PENDING_TTL_S`, bound to whoever started, and taken with GETDEL, so a
callback opens once. A callback that is refused for any reason (unknown or reused state,
denied consent, a code X refuses, no refresh token, a scope missing, the wrong X user) leaves
the stored account and tokens exactly as they were; only a complete, checked pair replaces
them (`ConnectedAccounts.install`).

A reconnect revokes the grant it replaced at X, only after the new pair is stored (an account
must never be left without a working pair). A revoke that fails does not undo the reconnect: it
is returned as a warning for the person (moderation counts it), audited
(`old_grant_not_revoked`) and logged.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from redis.asyncio import Redis

from twitstack.core.errors import TwitstackError
from twitstack.core.logging import get_logger, register_secret
from twitstack.core.sealing import KeyRingError, SealError
from twitstack.core.sections.writer import WriterSettings
from twitstack.writes import keys
from twitstack.writes.ledger_types import as_text
from twitstack.writes.token_store import StoredTokens, open_pair
from twitstack.writes.x_accounts import ConnectedAccount, ConnectedAccounts
from twitstack.writes.x_oauth import (
    XOAuthClient,
    XOAuthError,
    XUser,
    authorize_url,
    code_challenge,
    new_code_verifier,
)

__all__ = [
    "BASE_SCOPES",
    "PENDING_TTL_S",
    "SCOPE_GROUPS",
    "Authorization",
    "ConnectConfig",
    "ConnectError",
    "Finished",
    "XConnector",
    "connect_config",
    "scopes_for",
]

_log = get_logger(__name__)

SecretLookup = Callable[[str], Awaitable[str | None]]
PENDING_TTL_S = 600  # the user may have to log in to X first; the code itself lives 30 s
# Every connection can read its own profile and refresh without the user (offline.access).
BASE_SCOPES = ("tweet.read", "users.read", "offline.access")
SCOPE_GROUPS: dict[str, tuple[str, ...]] = {
    "posting": ("tweet.write",),
    "dms": ("dm.write",),
    "dm_read_back": ("dm.read",),  # lets the writer reconcile DMs it is unsure it sent
    "media": ("media.write",),
}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ConnectError(TwitstackError):
    """A connect, callback or disconnect that was refused; the message is for the person."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class ConnectConfig:
    """The X app accounts are connected to, as the connecting process needs it."""

    client_id: str
    client_secret: str | None
    authorize_base: str
    api_base: str
    redirect_uri: str | None


async def connect_config(writer: WriterSettings, secret: SecretLookup) -> ConnectConfig:
    """From the writer settings; ConnectError when no X app is configured."""
    if not writer.oauth2_client_id:
        raise ConnectError(
            "no X app is configured: set writer.oauth2_client_id (and "
            "writer.oauth2_redirect_uri) as described in docs/operations.md",
            reason="not_configured",
        )
    client_secret = None
    if writer.oauth2_client_secret_secret:
        client_secret = await secret(writer.oauth2_client_secret_secret)
        if not client_secret:
            raise ConnectError(
                f"secret {writer.oauth2_client_secret_secret!r} is not set", reason="not_configured"
            )
    return ConnectConfig(
        writer.oauth2_client_id, client_secret, writer.x_authorize_url,
        writer.x_api_base_url, writer.oauth2_redirect_uri,
    )  # fmt: skip


def scopes_for(groups: Iterable[str]) -> tuple[str, ...]:
    """The X scopes for the chosen groups, plus the base ones, sorted."""
    chosen = set(BASE_SCOPES)
    for group in groups:
        if group not in SCOPE_GROUPS:
            raise ConnectError(f"unknown scope group {group!r}", reason="bad_scope")
        chosen.update(SCOPE_GROUPS[group])
    return tuple(sorted(chosen))


@dataclass(frozen=True)
class Authorization:
    """Where to send the person, and the state that will come back."""

    url: str
    state: str


class Finished(NamedTuple):
    """A stored connection: `event` is "connect" or "reconnect"; `warning` says, for the person,
    that the grant it replaced is still alive at X (None: revoked, or nothing was replaced)."""

    account: ConnectedAccount
    event: str
    warning: str | None = None


class XConnector:
    """The connect flow over one X app; `configured` are the TOML account names (they win)."""

    def __init__(
        self,
        redis: Redis,
        accounts: ConnectedAccounts,
        oauth: XOAuthClient,
        config: ConnectConfig,
        *,
        configured: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._accounts = accounts
        self._oauth = oauth
        self._config = config
        self._configured = frozenset(configured)
        self._clock = clock

    async def start(
        self, name: str, groups: Iterable[str], *, actor: str, redirect_uri: str | None = None
    ) -> Authorization:
        """Remember a new state and verifier; the URL to X's consent page."""
        if not _NAME.match(name):
            raise ConnectError(
                "the label may hold 1-64 letters, digits, '_', '.' or '-'", reason="bad_name"
            )
        if name in self._configured:
            raise ConnectError(
                f"{name!r} is configured in the TOML file (writer.accounts), which wins; "
                "choose another label",
                reason="name_configured",
            )
        redirect = redirect_uri or self._config.redirect_uri
        if not redirect:
            raise ConnectError("writer.oauth2_redirect_uri is not set", reason="not_configured")
        scopes = scopes_for(groups)
        await self._ring_ready()
        existing = await self._accounts.by_name(name)
        verifier, state = new_code_verifier(), secrets.token_urlsafe(24)
        pending = {
            "name": name, "scopes": list(scopes), "verifier": verifier, "redirect_uri": redirect,
            "actor": actor, "expected_user_id": existing.user_id if existing else None,
        }  # fmt: skip
        await self._redis.set(
            keys.x_connect_pending(state), json.dumps(pending), ex=PENDING_TTL_S, nx=True
        )
        url = authorize_url(
            self._config.authorize_base, client_id=self._config.client_id,
            redirect_uri=redirect, scopes=scopes, state=state, challenge=code_challenge(verifier),
        )  # fmt: skip
        return Authorization(url, state)

    async def _ring_ready(self) -> None:
        # Without the sealing key ring nothing could be stored: say so before sending anyone to X.
        try:
            await self._accounts.tokens.ring()
        except KeyRingError as exc:
            raise ConnectError(
                f"this process cannot seal tokens: {exc}", reason="no_key_ring"
            ) from None

    async def finish(self, query: Mapping[str, str], *, actor: str) -> Finished:
        """Handle X's redirect: store the pair, then revoke the one it replaced; ConnectError
        if refused (nothing changed then)."""
        try:
            return await self._finish(query, actor)
        except ConnectError as exc:
            await self._accounts.audit("connect_refused", actor, None, reason=exc.reason)
            raise

    async def _finish(self, query: Mapping[str, str], actor: str) -> Finished:
        state = query.get("state", "")
        raw = await self._redis.getdel(keys.x_connect_pending(state)) if state else None
        if raw is None:
            raise ConnectError(
                "this sign-in link is unknown, expired or was already used; start again",
                reason="bad_state",
            )
        pending = json.loads(as_text(raw))
        if pending["actor"] != actor:
            raise ConnectError(
                "this sign-in was started by someone else; start again", reason="bad_state"
            )
        if query.get("error"):
            if query["error"] == "access_denied":
                raise ConnectError("consent was denied on X; nothing changed", reason="denied")
            raise ConnectError(f"X answered with error {query['error']!r}", reason="x_error")
        code = query.get("code", "")
        if not code:
            raise ConnectError("X sent no authorization code", reason="no_code")
        try:
            tokens = await self._oauth.exchange(
                code, verifier=pending["verifier"], redirect_uri=pending["redirect_uri"]
            )
        except XOAuthError as exc:
            raise ConnectError(
                f"{exc} (codes are valid for 30 seconds and only once; start again)",
                reason="exchange_refused",
            ) from None
        register_secret(tokens.access_token, tokens.refresh_token)
        user = await self._checked(tokens.access_token, tokens.refresh_token, tokens.scopes,
                                   pending)  # fmt: skip
        try:
            account, event = await self._account_for(user, pending, tokens.scopes, actor)
        except ConnectError:
            await self._revoke_quietly(tokens.refresh_token, "refresh_token")
            raise
        stored = StoredTokens(
            tokens.access_token, tokens.refresh_token, self._clock() + tokens.expires_in_s
        )
        replaced = await self._accounts.install(account, stored, event=event, actor=actor)
        warning = await self._revoke_replaced(account, replaced, actor) if replaced else None
        return Finished(account, event, warning)

    async def _revoke_replaced(
        self, account: ConnectedAccount, blob: str, actor: str
    ) -> str | None:
        """Revoke the pair `install` replaced (refresh token, then access token, as X may keep
        an access token alive until it expires); None, or the warning for the person."""
        try:
            old = open_pair(await self._accounts.tokens.ring(), account.name, blob)
        except (SealError, KeyRingError) as exc:
            problems = [f"the replaced tokens do not open ({exc})"]
        else:
            register_secret(old.access_token, old.refresh_token)
            problems = []
            for token, hint in ((old.refresh_token, "refresh_token"),
                                (old.access_token, "access_token")):  # fmt: skip
                if not token:
                    continue
                try:
                    await self._oauth.revoke(token, hint=hint)
                except XOAuthError as exc:
                    problems.append(f"{hint.replace('_', ' ')}: {exc}")
        if not problems:
            await self._accounts.audit("old_grant_revoked", actor, account)
            _log.info("x_connect.old_grant_revoked", account=account.name)
            return None
        problem = "; ".join(problems)
        await self._accounts.audit("old_grant_not_revoked", actor, account, reason=problem)
        _log.warning("x_connect.old_grant_not_revoked", account=account.name, reason=problem)
        return f"old grant not revoked: {problem}, revoke it in the account's X settings"

    async def _checked(
        self, access: str, refresh: str, granted: tuple[str, ...], pending: dict[str, object]
    ) -> XUser:
        wanted = pending["scopes"]
        assert isinstance(wanted, list)
        missing = sorted(set(wanted) - set(granted))
        try:
            if not refresh:
                raise ConnectError(
                    "X returned no refresh token (offline.access not granted): the account "
                    "would stop working within 2 hours; nothing changed",
                    reason="no_refresh_token",
                )
            if missing:
                raise ConnectError(
                    f"X did not grant {', '.join(missing)}; nothing changed", reason="scope_missing"
                )
            user = await self._oauth.me(access)
            expected = pending.get("expected_user_id")
            if expected and user.id != expected:
                raise ConnectError(
                    f"you signed in to X as @{user.username}, but {pending['name']!r} is "
                    "another X account; sign in as that account to reconnect it",
                    reason="wrong_user",
                )
        except (ConnectError, XOAuthError) as exc:
            # Do not leave an unused grant alive at X.
            await self._revoke_quietly(
                refresh or access, "refresh_token" if refresh else "access_token"
            )
            if isinstance(exc, XOAuthError):
                raise ConnectError(f"GET /2/users/me failed: {exc}", reason="me_failed") from None
            raise
        return user

    async def _account_for(
        self, user: XUser, pending: dict[str, object], granted: tuple[str, ...], actor: str
    ) -> tuple[ConnectedAccount, str]:
        name = str(pending["name"])
        existing = await self._accounts.by_user_id(user.id)
        if existing is not None and existing.name != name:
            raise ConnectError(
                f"@{user.username} is already connected as {existing.name!r}; reconnect it there",
                reason="already_connected",
            )
        holder = await self._accounts.by_name(name)
        if holder is not None and holder.user_id != user.id:
            raise ConnectError(
                f"the label {name!r} is taken by @{holder.username}", reason="bad_name"
            )
        account = ConnectedAccount(
            user_id=user.id, username=user.username, display_name=user.name, name=name,
            scopes=tuple(sorted(granted)), client_id=self._config.client_id,
            connected_at=self._clock(), connected_by=actor,
        )  # fmt: skip
        return account, "reconnect" if existing is not None else "connect"

    async def _revoke_quietly(self, token: str, hint: str) -> None:
        # Best effort: the grant was never stored, and X expires it on its own.
        with contextlib.suppress(XOAuthError):
            await self._oauth.revoke(token, hint=hint)

    async def disconnect(self, user_id: str, *, actor: str) -> tuple[ConnectedAccount, str]:
        """Revoke at X and remove; (account, what happened at X) for the page or the CLI."""
        account = await self._accounts.by_user_id(user_id)
        if account is None:
            raise ConnectError("that account is not connected", reason="not_connected")
        await self._ring_ready()
        try:
            found = await self._accounts.tokens.read(account.name)
        except SealError as exc:
            found, outcome = None, f"not revoked: stored tokens do not open ({exc})"
        else:
            outcome = "not revoked: no stored tokens"
        if found is not None:
            tokens, _ = found
            token, hint = (
                tokens.refresh_token or tokens.access_token,
                ("refresh_token" if tokens.refresh_token else "access_token"),
            )
            try:
                await self._oauth.revoke(token, hint=hint)
                outcome = "revoked at X"
            except XOAuthError as exc:
                # The credentials are removed anyway: the person asked to disconnect.
                outcome = f"not revoked ({exc}); revoke the app in the account's X settings"
        await self._accounts.remove(account, actor=actor, revoked=outcome)
        return account, outcome
