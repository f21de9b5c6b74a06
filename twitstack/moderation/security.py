"""Web security: headers on every response, CSRF checks, and login throttling without lockout."""

from __future__ import annotations

import contextlib
import hmac
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network, ip_address
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Clock = Callable[[], float]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_BASE_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
)
# Uploaded files served back (/media/...): nothing in them may run or load anything.
MEDIA_CSP = "default-src 'none'; sandbox"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class SecurityHeadersMiddleware:
    """Adds the security headers to every response, errors included.

    Everything but static files is `Cache-Control: no-store`: pages show moderation data and
    a shared cache or the back button must not replay them after logout.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")
        media = str(scope.get("path", "")).startswith("/media/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _BASE_HEADERS:
                    headers[name] = value
                if media:
                    headers["content-security-policy"] = MEDIA_CSP
                if self.hsts:
                    headers["strict-transport-security"] = "max-age=31536000"
                if static:
                    headers.setdefault("cache-control", "public, max-age=3600")
                else:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def cross_site(sec_fetch_site: str | None) -> bool:
    """True when Fetch Metadata says the request came from another site."""
    return sec_fetch_site is not None and sec_fetch_site not in ("same-origin", "none")


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of CSRF tokens; missing on either side never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def account_key(username: str) -> str:
    """The throttle's key for a username: the lookup's normalisation (strip) plus its
    case-insensitivity (the column is `COLLATE NOCASE`), so no spelling the lookup treats as
    the same user (`" victim1"`, `"VICTIM1"`) counts separately."""
    return username.strip().lower()


IPV6_CLIENT_PREFIX = 64


def address_key(ip: str) -> str:
    """The throttle's key for a client address: one client, however many addresses it shows.

    An IPv6 host is handed a whole /64 and may send from any address in it, so IPv6 counts
    per /64; an IPv4 client seen as `::ffff:a.b.c.d` (dual-stack socket) counts as a.b.c.d.
    """
    try:
        address = ip_address(ip.strip())
    except ValueError:
        return ip
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


@dataclass(frozen=True)
class ThrottleDecision:
    """Whether a login attempt may reach the password check, and if not, for how long.

    An allowed decision carries the reservation it made (`attempt`), to hand back on success.
    A refusal says whether it should be audited: only the first refusal per throttled key and
    window is, with the number of refusals folded into it since the last audited one.
    """

    allowed: bool
    retry_after_s: int = 0
    attempt: float = 0.0
    audit: bool = False
    suppressed: int = 0


_MAX_KEYS = 100_000


class LoginThrottle:
    """Moving-window failure counts per account and per client IP.

    `acquire` checks and records in one step with no await in between, so concurrent
    attempts cannot all pass the check before any of them is counted: every allowed attempt
    counts as a failure until `record_success` says otherwise. It runs *before* argon2, so a
    flood cannot burn CPU. There is no permanent lockout: failures age out of the window, and
    a success clears the account's count.
    """

    def __init__(self, clock: Clock, *, window_s: float, per_account: int, per_ip: int) -> None:
        self._clock = clock
        self._window_s = window_s
        self._limits = {"account": per_account, "ip": per_ip}
        self._failures: dict[tuple[str, str], deque[float]] = {}
        # (kind, key) -> (when the last audited refusal was, refusals since then)
        self._refusals: dict[tuple[str, str], tuple[float, int]] = {}

    def _recent(self, kind: str, key: str) -> deque[float]:
        entries = self._failures.get((kind, key))
        if entries is None:
            return deque()
        horizon = self._clock() - self._window_s
        while entries and entries[0] <= horizon:
            entries.popleft()
        if not entries:
            del self._failures[(kind, key)]
        return entries

    def acquire(self, account: str, ip: str) -> ThrottleDecision:
        """May this attempt go on to the password check? If so it is counted already."""
        now = self._clock()
        keys = (("account", account_key(account)), ("ip", address_key(ip)))
        for kind, key in keys:
            entries = self._recent(kind, key)
            if len(entries) >= self._limits[kind]:
                wait = entries[0] + self._window_s - now
                audit, suppressed = self._refused(kind, key, now)
                return ThrottleDecision(
                    allowed=False,
                    retry_after_s=max(1, int(wait) + 1),
                    audit=audit,
                    suppressed=suppressed,
                )
        for kind, key in keys:
            self._failures.setdefault((kind, key), deque()).append(now)
        self._bound(self._failures)
        return ThrottleDecision(allowed=True, attempt=now)

    def check(self, account: str, ip: str) -> ThrottleDecision:
        """Would an attempt be refused now? Records nothing (pair with `record_failure`).

        For checks with nothing expensive behind them (API keys): reserving up front, as
        `acquire` does, would throttle a burst of concurrent *valid* attempts.
        """
        now = self._clock()
        for kind, key in (("account", account_key(account)), ("ip", address_key(ip))):
            entries = self._recent(kind, key)
            if len(entries) >= self._limits[kind]:
                wait = entries[0] + self._window_s - now
                return ThrottleDecision(allowed=False, retry_after_s=max(1, int(wait) + 1))
        return ThrottleDecision(allowed=True)

    def record_failure(self, account: str, ip: str) -> None:
        """Count one failed attempt that `check` let through."""
        now = self._clock()
        for kind, key in (("account", account_key(account)), ("ip", address_key(ip))):
            self._failures.setdefault((kind, key), deque()).append(now)
        self._bound(self._failures)

    def _refused(self, kind: str, key: str, now: float) -> tuple[bool, int]:
        last, count = self._refusals.get((kind, key), (float("-inf"), 0))
        if now - last >= self._window_s:
            self._refusals[(kind, key)] = (now, 0)
            self._bound(self._refusals)
            return True, count
        self._refusals[(kind, key)] = (last, count + 1)
        return False, 0

    @staticmethod
    def _bound(table: dict[tuple[str, str], Any]) -> None:
        # Bound memory under a flood of distinct usernames: forget the oldest keys.
        if len(table) > _MAX_KEYS:
            for stale in list(table)[: _MAX_KEYS // 10]:
                del table[stale]

    def record_success(self, account: str, ip: str, attempt: float) -> None:
        """The attempt that `acquire` allowed succeeded: clear the account, free the IP slot."""
        self._failures.pop(("account", account_key(account)), None)
        entries = self._failures.get(("ip", address_key(ip)))
        if entries is not None:
            with contextlib.suppress(ValueError):  # already aged out of the window
                entries.remove(attempt)
