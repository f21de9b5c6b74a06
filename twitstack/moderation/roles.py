"""Roles and THE table declaring each route's minimum role; a route not in it is denied."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """Ordered roles: each one may do everything the ones below it may."""

    VIEWER = 1
    AUTHOR = 2
    MODERATOR = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Role:
        """The role named `value` (case-insensitive); ValueError lists the valid names."""
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(r.label for r in cls)
            raise ValueError(f"unknown role {value!r}; expected one of {names}") from None


# API-key scopes: what a bearer token may do on top of its owner's role.
SCOPES: tuple[str, ...] = ("read", "write", "moderate")


@dataclass(frozen=True)
class Rule:
    """Who may call a route: `role` None means anyone, even anonymous; `scope` binds API tokens."""

    role: Role | None
    scope: str | None = None

    @property
    def public(self) -> bool:
        return self.role is None


PUBLIC = Rule(None)
VIEWER = Rule(Role.VIEWER)
AUTHOR = Rule(Role.AUTHOR)
MODERATOR = Rule(Role.MODERATOR)
ADMIN = Rule(Role.ADMIN)

# (method, route path template) -> minimum role. HEAD follows GET.
ROUTE_RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/static"): PUBLIC,
    ("GET", "/favicon.ico"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/api/auth/token"): PUBLIC,
    ("POST", "/logout"): VIEWER,
    ("GET", "/"): VIEWER,
    ("GET", "/queue"): VIEWER,
    ("GET", "/queue/rows"): VIEWER,
    ("POST", "/queue/bulk"): MODERATOR,
    ("POST", "/compose/check"): AUTHOR,
    ("GET", "/requests/new"): AUTHOR,
    ("POST", "/requests/new"): AUTHOR,
    ("GET", "/requests/{request_id}"): VIEWER,
    ("GET", "/requests/{request_id}/edit"): AUTHOR,
    ("POST", "/requests/{request_id}/edit"): AUTHOR,
    ("POST", "/requests/{request_id}/approve"): MODERATOR,
    ("POST", "/requests/{request_id}/reject"): MODERATOR,
    ("POST", "/requests/{request_id}/retry"): AUTHOR,
    ("POST", "/requests/{request_id}/copy"): AUTHOR,
    ("POST", "/requests/{request_id}/cancel"): MODERATOR,
    ("POST", "/requests/{request_id}/reschedule"): MODERATOR,
    ("GET", "/scheduled"): VIEWER,
    ("GET", "/history"): VIEWER,
    ("GET", "/accounts"): VIEWER,
    ("GET", "/accounts/x/connect"): ADMIN,
    ("POST", "/accounts/x/connect"): ADMIN,
    # X's redirect arrives without the SameSite=Strict session cookie; it only forwards.
    ("GET", "/accounts/x/callback"): PUBLIC,
    ("GET", "/accounts/x/finish"): ADMIN,
    ("POST", "/accounts/x/{user_id}/reconnect"): ADMIN,
    ("POST", "/accounts/x/{user_id}/disconnect"): ADMIN,
    ("POST", "/accounts/spend/cap"): ADMIN,
    ("GET", "/api/spend"): VIEWER,
    ("GET", "/dead-letters"): MODERATOR,
    ("GET", "/dead-letters/{entry_id}"): MODERATOR,
    ("POST", "/dead-letters/{entry_id}/retry"): MODERATOR,
    ("POST", "/dead-letters/{entry_id}/discard"): MODERATOR,
    ("GET", "/users"): ADMIN,
    ("POST", "/users"): ADMIN,
    ("POST", "/users/{user_id}/role"): ADMIN,
    ("POST", "/users/{user_id}/disable"): ADMIN,
    ("POST", "/users/{user_id}/enable"): ADMIN,
    ("POST", "/users/{user_id}/password"): ADMIN,
    ("GET", "/audit"): ADMIN,
    ("GET", "/apikeys"): ADMIN,
    ("POST", "/apikeys"): ADMIN,
    ("POST", "/apikeys/{key_id}/revoke"): ADMIN,
    ("POST", "/api/media"): Rule(Role.AUTHOR, "write"),
    ("GET", "/media/{sha256}"): VIEWER,
    ("GET", "/api/requests"): Rule(Role.VIEWER, "read"),
    ("POST", "/api/requests"): Rule(Role.AUTHOR, "write"),
    ("GET", "/api/requests/{request_id}"): Rule(Role.VIEWER, "read"),
    ("PATCH", "/api/requests/{request_id}"): Rule(Role.AUTHOR, "write"),
    ("POST", "/api/requests/{request_id}/approve"): Rule(Role.MODERATOR, "moderate"),
    ("POST", "/api/requests/{request_id}/reject"): Rule(Role.MODERATOR, "moderate"),
}


def rule_for(method: str, path_template: str) -> Rule | None:
    """The declared rule for a route, or None (which callers must treat as deny)."""
    method = "GET" if method == "HEAD" else method
    return ROUTE_RULES.get((method, path_template))
