"""Web security: headers on every response, CSRF checks, and login throttling without lockout."""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

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

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _BASE_HEADERS:
                    headers[name] = value
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


@dataclass(frozen=True)
class ThrottleDecision:
    """Whether a login attempt may reach the password check, and if not, for how long."""

    allowed: bool
    retry_after_s: int = 0


class LoginThrottle:
    """Moving-window failure counts per account and per client IP.

    Checked *before* argon2 runs, so a flood cannot burn CPU. There is no permanent lockout:
    failures age out of the window, and a success clears the account's count.
    """

    def __init__(self, clock: Clock, *, window_s: float, per_account: int, per_ip: int) -> None:
        self._clock = clock
        self._window_s = window_s
        self._limits = {"account": per_account, "ip": per_ip}
        self._failures: dict[tuple[str, str], deque[float]] = {}

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

    def check(self, account: str, ip: str) -> ThrottleDecision:
        """May this attempt go on to the password check?"""
        for kind, key in (("account", account.lower()), ("ip", ip)):
            entries = self._recent(kind, key)
            if len(entries) >= self._limits[kind]:
                wait = entries[0] + self._window_s - self._clock()
                return ThrottleDecision(allowed=False, retry_after_s=max(1, int(wait) + 1))
        return ThrottleDecision(allowed=True)

    def record_failure(self, account: str, ip: str) -> None:
        now = self._clock()
        for kind, key in (("account", account.lower()), ("ip", ip)):
            self._failures.setdefault((kind, key), deque()).append(now)
        # Bound memory under a flood of distinct usernames: forget the oldest keys.
        if len(self._failures) > 100_000:
            for stale in list(self._failures)[:10_000]:
                del self._failures[stale]

    def record_success(self, account: str) -> None:
        self._failures.pop(("account", account.lower()), None)
