"""twscrape's recorded X GraphQL responses (see fixtures/twscrape_mocked/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "twscrape_mocked"
# The ids the recordings were made with (twscrape's scripts/update-mocked-data.py).
XDEVELOPERS_ID = 2244994945
THREAD_ID = 1649191520250245121


def recorded(name: str) -> dict[str, Any]:
    """One recorded response: "search", "user_tweets" or "tweet_details"."""
    body: dict[str, Any] = json.loads((FIXTURES / f"raw_{name}.json").read_text())
    return body
