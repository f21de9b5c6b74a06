"""The scraper service: scheduled twscrape jobs, tweet storage and archive."""
