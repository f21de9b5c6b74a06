"""twscrape's user-agent list is built on first use, not when the adapter is imported."""

from __future__ import annotations

import subprocess
import sys

FIRST_USE = """
import twitstack.scraper.twscrape_adapter  # the adapter imports twscrape first
import twscrape.http as http
from twitstack.scraper.twscrape_adapter.user_agents import UserAgentOnFirstUse
stand_in = http._ua
assert isinstance(stand_in, UserAgentOnFirstUse), type(stand_in)
assert stand_in._real is None, "built at import"
ua, family = http._resolve_browser("@firefox", seed=7)
assert family == "firefox" and "Firefox" in ua, ua
assert stand_in._real is not None
from fake_useragent import UserAgent
assert UserAgent is not UserAgentOnFirstUse  # the real class is back for everyone else
assert "Mozilla" in http._resolve_browser("@chrome")[0]
print("ok")
"""


def test_user_agents_are_built_on_first_use() -> None:
    # A fresh interpreter: this test process may have imported twscrape already.
    result = subprocess.run(
        [sys.executable, "-c", FIRST_USE], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "ok", result.stderr[-2000:]
