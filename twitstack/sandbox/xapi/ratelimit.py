"""Fixed-window rate limits per (user, endpoint) and (app, endpoint), reported in X's headers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from twitstack.sandbox.xapi.clock import SandboxClock
from twitstack.sandbox.xapi.config import Endpoint, LimitScope, WindowLimit

_DAY_S = 86_400.0
_APP = "app"  # the sandbox models a single X app, so every caller shares the app buckets
# Requests X cannot attribute to a user (bad or expired credentials) count in a bucket of their
# own, and a 401 reports that bucket: its headers say nothing about any user's window.
ANONYMOUS = "anonymous"


@dataclass
class _Bucket:
    used: int
    reset_at: float


@dataclass(frozen=True)
class BucketView:
    """One window as a client sees it."""

    scope: LimitScope
    window_s: float
    limit: int
    remaining: int
    reset: int  # epoch seconds, rounded up so a client waiting until then is never early


@dataclass(frozen=True)
class RateDecision:
    """Whether a request may go ahead, and the headers to send either way."""

    allowed: bool
    headers: dict[str, str]
    blocked_by: BucketView | None = None


class RateLimiter:
    """Counts requests in fixed windows that open with the first request after the last reset.

    Every window of an endpoint must have room for a request to be admitted; a refused request
    does not count. The headers describe the shortest per-user window (X's `x-rate-limit-*`),
    plus the 24-hour user and app windows when configured.
    """

    def __init__(
        self,
        clock: SandboxClock,
        limits: Mapping[Endpoint, tuple[WindowLimit, ...]],
        *,
        send_24hour_headers: bool,
    ) -> None:
        self._clock = clock
        self._limits = dict(limits)
        self._send_24h = send_24hour_headers
        self._buckets: dict[tuple[Endpoint, LimitScope, str, float], _Bucket] = {}

    def limits(self, endpoint: Endpoint) -> tuple[WindowLimit, ...]:
        """The windows configured for `endpoint` (empty = unlimited)."""
        return self._limits.get(endpoint, ())

    def set_limits(self, endpoint: Endpoint, windows: tuple[WindowLimit, ...]) -> None:
        """Replace an endpoint's windows and forget its counts."""
        self._limits[endpoint] = windows
        self._buckets = {k: b for k, b in self._buckets.items() if k[0] != endpoint}

    def reset(self) -> None:
        """Forget every count."""
        self._buckets.clear()

    def consume(self, endpoint: Endpoint, user_id: str | None) -> RateDecision:
        """Count one request if every window has room; the headers reflect the outcome."""
        views = self._views(endpoint, user_id)
        blocked = next((v for v in views if v.remaining <= 0), None)
        if blocked is None:
            for window in self.limits(endpoint):
                bucket = self._bucket(endpoint, window, user_id)
                if bucket is not None:
                    bucket.used += 1
            views = self._views(endpoint, user_id)
        return RateDecision(blocked is None, self._headers(views), blocked)

    def peek(self, endpoint: Endpoint, user_id: str | None) -> dict[str, str]:
        """The headers for a response that does not count against any window."""
        return self._headers(self._views(endpoint, user_id))

    def unauthorized(self, endpoint: Endpoint) -> dict[str, str]:
        """Count a 401 in the anonymous per-user bucket and return that bucket's headers."""
        for window in self.limits(endpoint):
            if window.scope is LimitScope.USER:
                bucket = self._bucket(endpoint, window, ANONYMOUS)
                if bucket is not None and bucket.used < window.limit:
                    bucket.used += 1
        views = self._views(endpoint, ANONYMOUS)
        return self._headers([v for v in views if v.scope is LimitScope.USER])

    def exhaust(self, endpoint: Endpoint, user_id: str | None, *, window_s: float) -> None:
        """Use up a window now (e.g. the 24-hour one) so the next request gets a 429."""
        for window in self.limits(endpoint):
            if window.window_s == window_s:
                bucket = self._bucket(endpoint, window, user_id)
                if bucket is not None:
                    bucket.used = window.limit

    def _bucket(
        self, endpoint: Endpoint, window: WindowLimit, user_id: str | None
    ) -> _Bucket | None:
        subject = _APP if window.scope is LimitScope.APP else user_id
        if subject is None:
            return None
        now = self._clock.now()
        key = (endpoint, window.scope, subject, window.window_s)
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset_at:
            bucket = _Bucket(used=0, reset_at=now + window.window_s)
            self._buckets[key] = bucket
        return bucket

    def _views(self, endpoint: Endpoint, user_id: str | None) -> list[BucketView]:
        views = []
        for window in self.limits(endpoint):
            bucket = self._bucket(endpoint, window, user_id)
            # Without a user (a 401) the per-user windows are shown full and untouched.
            used = bucket.used if bucket is not None else 0
            reset_at = (
                bucket.reset_at if bucket is not None else self._clock.now() + window.window_s
            )
            views.append(
                BucketView(
                    scope=window.scope,
                    window_s=window.window_s,
                    limit=window.limit,
                    remaining=max(window.limit - used, 0),
                    reset=math.ceil(reset_at),
                )
            )
        return views

    def _headers(self, views: list[BucketView]) -> dict[str, str]:
        if not views:
            return {}
        users = [v for v in views if v.scope is LimitScope.USER]
        primary = min(users or views, key=lambda v: v.window_s)
        headers = {
            "x-rate-limit-limit": str(primary.limit),
            "x-rate-limit-remaining": str(primary.remaining),
            "x-rate-limit-reset": str(primary.reset),
        }
        if self._send_24h:
            for view in views:
                if view.window_s >= _DAY_S and view is not primary:
                    prefix = f"x-{view.scope.value}-limit-24hour"
                    headers[f"{prefix}-limit"] = str(view.limit)
                    headers[f"{prefix}-remaining"] = str(view.remaining)
                    headers[f"{prefix}-reset"] = str(view.reset)
        return headers
