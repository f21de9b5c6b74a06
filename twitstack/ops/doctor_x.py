"""Doctor checks against X: each account's credentials via GET /2/users/me, expiry, clock skew."""

from __future__ import annotations

import math
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from twitstack.core.errors import SecretError
from twitstack.core.sections.writer import WriterSettings, XAccountSettings
from twitstack.ops.doctor_checks import clock_result
from twitstack.ops.doctor_report import CheckResult, DoctorContext, fail, measured_skew, ok, warn
from twitstack.writer.tokens import AccountAuth, CredentialsError, TokenManager
from twitstack.writer.xapi_client import XApiClient
from twitstack.writes import keys
from twitstack.writes.token_store import keyring_source
from twitstack.writes.x_accounts import ConnectedAccount

# An OAuth 2.0 token that cannot be refreshed and expires sooner than this is worth a warning.
EXPIRY_WARNING_S = 24 * 3600.0
_DATE_RESOLUTION_S = 1.0  # HTTP dates have whole seconds
_SCOPES = "tweet.read tweet.write users.read dm.read dm.write media.write offline.access"


@dataclass(frozen=True)
class _ClockSample:
    server_s: float
    sent_s: float
    received_s: float

    def skew(self) -> float:
        return measured_skew(self.server_s, self.sent_s, self.received_s, _DATE_RESOLUTION_S)


async def check_x_accounts(
    ctx: DoctorContext, redis: Redis, *, redis_ok: bool
) -> list[CheckResult]:
    """One line per configured X account, then the clock compared with X's `Date` header."""
    writer = ctx.settings.writer
    base_url = writer.x_api_base_url.rstrip("/")
    results: list[CheckResult] = []
    samples: list[_ClockSample] = []
    timeout = httpx.Timeout(ctx.timeout_s)
    async with httpx.AsyncClient(timeout=timeout, transport=ctx.transport) as http:
        # The doctor only looks: an infinitely negative leeway means TokenManager never
        # refreshes (which would spend the refresh token) and hands out what it has.
        accounts = [*writer.accounts, *await _connected(writer, redis, redis_ok=redis_ok)]
        tokens = TokenManager(
            redis,
            XApiClient(http, base_url=base_url),
            accounts,
            clock=ctx.clock,
            secret=ctx.secret,
            leeway_s=-math.inf,
            keyring=keyring_source(
                ctx.secret, env=ctx.settings.env, data_dir=ctx.settings.state_dir
            ),
        )
        for account in accounts:
            result, sample = await _check_account(ctx, http, tokens, account, redis_ok=redis_ok)
            results.append(result)
            if sample is not None:
                samples.append(sample)
        if not accounts:
            results.append(
                warn(
                    "x accounts",
                    "none configured or connected: the writer cannot send anything",
                    "twitstack x-accounts connect NAME, or add a [[writer.accounts]] entry",
                )
            )
        if not samples:
            # No account answered (or none is configured): X's public OpenAPI document
            # carries a Date header too.
            sample = await _unauthenticated_sample(ctx, http, base_url)
            if sample is not None:
                samples.append(sample)
    if samples:
        results.append(clock_result("clock vs X", samples[0].skew(), ctx.max_skew_s))
    else:
        results.append(
            warn("clock vs X", f"could not read X's clock from {base_url}", "check the X lines")
        )
    return results


async def _connected(
    writer: WriterSettings, redis: Redis, *, redis_ok: bool
) -> list[XAccountSettings]:
    """Accounts connected from the UI or CLI (TOML labels win), when Redis answers."""
    if not redis_ok:
        return []
    secret = writer.oauth2_client_secret_secret
    configured = {a.name for a in writer.accounts}
    try:
        found = await redis.hgetall(keys.X_ACCOUNTS)
    except RedisError:
        return []  # the Redis line of the report says why
    connected = ConnectedAccount.read_all(found)
    return [a.writer_settings(secret) for a in connected if a.name not in configured]


async def _check_account(
    ctx: DoctorContext,
    http: httpx.AsyncClient,
    tokens: TokenManager,
    account: XAccountSettings,
    *,
    redis_ok: bool,
) -> tuple[CheckResult, _ClockSample | None]:
    name = f"x account {account.name}"
    if account.auth == "oauth2" and not redis_ok:
        return warn(name, "not checked: its tokens live in Redis", "fix Redis first"), None
    try:
        with anyio.fail_after(ctx.timeout_s):
            auth = await tokens.auth_for(account.name)
    except (CredentialsError, SecretError) as exc:
        hint = "set the secret in the environment or in AWS Secrets Manager"
        return fail(name, str(exc), hint), None
    except (RedisError, OSError, TimeoutError) as exc:
        return fail(name, f"token store unreadable ({type(exc).__name__})", "fix Redis"), None
    url = ctx.settings.writer.x_api_base_url.rstrip("/") + "/2/users/me"
    sent = ctx.clock()
    try:
        with anyio.fail_after(ctx.timeout_s):
            response = await http.get(url, auth=auth.auth)
    except (httpx.HTTPError, TimeoutError) as exc:
        hint = "check the network, proxy and writer.x_api_base_url"
        return fail(name, f"cannot reach {url} ({type(exc).__name__})", hint), None
    sample = _sample(response, sent, ctx.clock())
    return _judge(name, account, auth, response, ctx.clock()), sample


def _judge(
    name: str,
    account: XAccountSettings,
    auth: AccountAuth,
    response: httpx.Response,
    now: float,
) -> CheckResult:
    status = response.status_code
    if status == 200:
        return _identity_result(name, account, auth, response, now)
    if status == 401:
        expired = auth.expires_at is not None and auth.expires_at <= now
        if expired and _can_refresh(account):
            return warn(
                name,
                "access token expired; the writer refreshes it on first use",
                "nothing, unless the writer then logs writer.token_refresh_rejected",
            )
        secret = account.access_token_secret
        hint = f"re-authorise {account.name} and update secret {secret!r}"
        if account.connected:
            hint = f"reconnect it: twitstack x-accounts connect {account.name} (or Accounts page)"
        return fail(name, f"X refused the credentials (401 {_problem(response)})", hint)
    if status == 403:
        return fail(
            name,
            f"X refused /2/users/me (403 {_problem(response)})",
            f"re-authorise with scopes {_SCOPES}, or enable the app's write access",
        )
    if status == 429 or status >= 500:
        return warn(
            name, f"X answered {status}: credentials not verified", "run the doctor again later"
        )
    return fail(name, f"unexpected answer {status} ({_problem(response)})", "see X's status page")


def _identity_result(
    name: str,
    account: XAccountSettings,
    auth: AccountAuth,
    response: httpx.Response,
    now: float,
) -> CheckResult:
    data = _json(response).get("data")
    data = data if isinstance(data, dict) else {}
    user_id, username = str(data.get("id", "?")), str(data.get("username", "?"))
    if user_id != account.user_id:
        return fail(
            name,
            f"the credentials are @{username} (id {user_id}), not user_id {account.user_id}",
            "fix writer.accounts user_id, or the secret holding this account's token",
        )
    access = response.headers.get("x-access-level")
    if access is not None and "write" not in access:
        return fail(
            name,
            f"@{username}: the app's access level is {access!r}; it cannot post",
            "grant Read and Write (and Direct Messages) in the developer portal, then "
            "regenerate the access token",
        )
    scopes = f"access level {access}" if access else "scopes not reported by X"
    detail = f"@{username} (id {user_id}), {auth.kind}, {scopes}"
    if auth.expires_at is None:
        return ok(name, f"{detail}, token expiry unknown (not refreshed yet)")
    left = auth.expires_at - now
    if left < EXPIRY_WARNING_S and not _can_refresh(account):
        return warn(
            name,
            f"{detail}, token expires in {max(left, 0) / 3600:.1f} h and cannot be refreshed",
            "set refresh_token_secret and client_id (scope offline.access)",
        )
    return ok(name, f"{detail}, token valid for {max(left, 0) / 60:.0f} min")


def _can_refresh(account: XAccountSettings) -> bool:
    # A connected account always holds a refresh token (connect refuses a grant without one).
    return bool((account.refresh_token_secret or account.connected) and account.client_id)


async def _unauthenticated_sample(
    ctx: DoctorContext, http: httpx.AsyncClient, base_url: str
) -> _ClockSample | None:
    sent = ctx.clock()
    try:
        with anyio.fail_after(ctx.timeout_s):
            response = await http.get(base_url + "/2/openapi.json")
    except (httpx.HTTPError, TimeoutError):
        return None
    return _sample(response, sent, ctx.clock())


def _sample(response: httpx.Response, sent: float, received: float) -> _ClockSample | None:
    header = response.headers.get("date")
    if header is None:
        return None
    try:
        server = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return None
    return _ClockSample(server, sent, received)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _problem(response: httpx.Response) -> str:
    body = _json(response)
    text = str(body.get("detail") or body.get("title") or response.reason_phrase or "")
    return text[:120]
