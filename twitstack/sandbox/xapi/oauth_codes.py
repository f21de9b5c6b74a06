"""Authorization codes the fake's consent step issued, and its consent switch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CODE_TTL_S = 30.0  # X: "the authorization code expires after 30 seconds"


@dataclass
class PendingCode:
    """An authorization code the consent step issued; opens once, within CODE_TTL_S."""

    client_id: str
    redirect_uri: str
    user_id: str
    scopes: frozenset[str]
    challenge: str
    method: str
    issued_at: float
    used: bool = False
    family: str | None = None  # set when exchanged, so a replay can revoke what it issued


@dataclass
class AuthorizationCodes:
    """Issued codes, the consent switch, and counts for tests."""

    codes: dict[str, PendingCode] = field(default_factory=dict)
    decision: Literal["approve", "deny"] = "approve"
    user_id: str = "1000"
    issued: int = 0
    exchanged: int = 0
    revoked: int = 0
