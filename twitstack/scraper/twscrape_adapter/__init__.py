"""twscrape behind one door: pool, API calls, logging, telemetry and response observation.

This package is the only place importing twscrape. Everything else speaks ScrapedTweet, Page,
ResponseEvent and AccountInfo. twscrape is asyncio-only, so anyio must run on asyncio.
"""

import os

# Telemetry is read on every capture(); set before anything can issue a request.
os.environ["TWS_TELEMETRY"] = "0"

from twitstack.scraper.twscrape_adapter.user_agents import import_twscrape, load_user_agents

import_twscrape()  # before the modules below import twscrape

# The imports below import twscrape, so they come after import_twscrape().
from twitstack.scraper.parse import parse_tweet_result  # noqa: E402
from twitstack.scraper.twscrape_adapter.accounts import (  # noqa: E402
    TwscrapeAccounts,
    parse_cookies,
)
from twitstack.scraper.twscrape_adapter.client import (  # noqa: E402
    QUEUES_BY_JOB_KIND,
    TwscrapeClient,
    tweet_from_twscrape,
    twscrape_parse,
    twscrape_version,
)
from twitstack.scraper.twscrape_adapter.observe import (  # noqa: E402
    ResponseObserver,
    break_sandbox_transaction_ids,
    classify_response,
    configure_twscrape,
    set_transport_observer,
)

__all__ = [
    "QUEUES_BY_JOB_KIND",
    "ResponseObserver",
    "TwscrapeAccounts",
    "TwscrapeClient",
    "break_sandbox_transaction_ids",
    "classify_response",
    "configure_twscrape",
    "load_user_agents",
    "parse_cookies",
    "parse_tweet_result",
    "set_transport_observer",
    "tweet_from_twscrape",
    "twscrape_parse",
    "twscrape_version",
]
