"""The scraper service: scheduled twscrape jobs, tweet storage and archive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twitstack.scraper.client import ScraperClient

__all__ = ["ScraperClient"]


def __getattr__(name: str) -> Any:
    # The seed's `from twitstack.scraper import ScraperClient`, loaded on first use: importing
    # any scraper module must not load twscrape (the CLI and moderation import this package).
    if name == "ScraperClient":
        from twitstack.scraper.client import ScraperClient

        return ScraperClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
