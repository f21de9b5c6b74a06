"""The twitstack exception tree.

TwitstackError                 root: anything twitstack raises on purpose
├── ConfigError                bad settings (one line per field)
├── StartupError               a service could not start (port in use, Redis unreachable, ...)
│   ├── PortInUseError         a listening port is taken
│   ├── RedisUnavailableError  Redis did not answer within the start-up retries
│   └── RedisVersionError      Redis answers but is older than twitstack needs
├── CrashLoopError             a service crashed too often within the configured window
└── SecretError                a secret could not be fetched (Secrets Manager outage, timeout)
"""

from __future__ import annotations


class TwitstackError(Exception):
    """Root of every error twitstack raises on purpose."""


class ConfigError(TwitstackError):
    """Settings could not be loaded; `problems` holds one line per bad field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class StartupError(TwitstackError):
    """A service could not start."""


class PortInUseError(StartupError):
    """A port a service must listen on is already taken; `port` says which (None: unknown)."""

    def __init__(self, message: str, *, port: int | None = None) -> None:
        super().__init__(message)
        self.port = port


def root_cause(exc: BaseException) -> BaseException:
    """The first real error inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


class RedisUnavailableError(StartupError):
    """Redis could not be reached within the start-up retries."""


class RedisVersionError(StartupError):
    """Redis answers, but is older than twitstack needs."""


class CrashLoopError(TwitstackError):
    """A service crashed more often than the supervisor tolerates."""


class SecretError(TwitstackError):
    """A secret could not be fetched from its backend."""
