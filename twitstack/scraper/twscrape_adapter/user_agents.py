"""twscrape's user-agent list, loaded when twscrape first picks a user agent, not at import.

twscrape.http builds a fake_useragent `UserAgent()` at import, which parses fake_useragent's
whole browser list (about 10 MiB of dicts resident, ~40 ms): a scraper with no job, and the
CLI commands that only read the account pool, never pick a user agent. Imported here with a
stand-in that builds the real `UserAgent` on its first attribute access; a scraper with jobs
builds it at start, in a worker thread (`load_user_agents`).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import fake_useragent


class UserAgentOnFirstUse:
    """Stands in for a `fake_useragent.UserAgent` until something asks it for a value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._real: fake_useragent.UserAgent | None = None
        self._lock = threading.Lock()

    def loaded(self) -> fake_useragent.UserAgent:
        """The real UserAgent, built on the first call."""
        if self._real is None:
            with self._lock:
                if self._real is None:
                    self._real = _REAL_USER_AGENT(*self._args, **self._kwargs)
        return self._real

    def __getattr__(self, name: str) -> Any:
        # Only for names this object lacks: `data_browsers`, `chrome`, `random`, ...
        return getattr(self.loaded(), name)


_REAL_USER_AGENT = fake_useragent.UserAgent


def import_twscrape() -> None:
    """Import twscrape with its module-level UserAgent() deferred (see the module docstring)."""
    if "twscrape.http" in sys.modules:
        return
    fake_useragent.UserAgent = UserAgentOnFirstUse  # type: ignore[assignment]
    try:
        import twscrape.http  # noqa: F401
    finally:
        fake_useragent.UserAgent = _REAL_USER_AGENT


def load_user_agents() -> None:
    """Build twscrape's user-agent list now (blocking: call it in a worker thread)."""
    import twscrape.http

    stand_in = getattr(twscrape.http, "_ua", None)
    if isinstance(stand_in, UserAgentOnFirstUse):
        stand_in.loaded()
