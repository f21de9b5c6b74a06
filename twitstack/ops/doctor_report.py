"""What doctor checks share: the result of a check, the context they read, clock-skew maths."""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from twitstack.core.config import Settings
from twitstack.core.secrets import aget_secret
from twitstack.ops.commands import DEFAULT_TIMEOUT_S
from twitstack.writer.tokens import SecretLookup

# Above this many seconds of disagreement, signed OAuth 1.0a requests and token expiry
# arithmetic start to go wrong (X rejects OAuth1 timestamps a few minutes off).
MAX_CLOCK_SKEW_S = 3.0


class CheckStatus(enum.StrEnum):
    """How one check came out; FAIL makes the doctor exit 1."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: what was checked, how it went, and how to fix it."""

    name: str
    status: CheckStatus
    message: str
    hint: str | None = None

    def render(self) -> str:
        """`[ ok ] name: message` plus `(fix: hint)` when there is one."""
        line = f"[{self.status.value:^4}] {self.name}: {self.message}"
        return f"{line}  (fix: {self.hint})" if self.hint else line


def ok(name: str, message: str) -> CheckResult:
    """A passed check."""
    return CheckResult(name, CheckStatus.OK, message)


def warn(name: str, message: str, hint: str) -> CheckResult:
    """A check that found something worth fixing, though nothing is broken."""
    return CheckResult(name, CheckStatus.WARN, message, hint)


def fail(name: str, message: str, hint: str) -> CheckResult:
    """A broken part: the daemon would not work as configured."""
    return CheckResult(name, CheckStatus.FAIL, message, hint)


@dataclass(frozen=True)
class DoctorContext:
    """What the checks read: the settings, where they came from, and the injectable edges."""

    settings: Settings
    config_path: Path | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    secret: SecretLookup = aget_secret
    clock: Callable[[], float] = time.time
    # Tests hand in an ASGI/mock transport; None = real sockets.
    transport: httpx.AsyncBaseTransport | None = None
    max_skew_s: float = MAX_CLOCK_SKEW_S


def measured_skew(server_s: float, sent_s: float, received_s: float, resolution_s: float) -> float:
    """How far our clock is off a server's, beyond what the round trip and rounding explain.

    `server_s` is the server's time (truncated to `resolution_s`) read between `sent_s` and
    `received_s` on our clock; positive means we are behind. 0.0 when within the uncertainty.
    """
    midpoint = (sent_s + received_s) / 2
    raw = server_s + resolution_s / 2 - midpoint
    slack = resolution_s / 2 + (received_s - sent_s) / 2
    excess = max(abs(raw) - slack, 0.0)
    return math.copysign(excess, raw) if excess else 0.0
