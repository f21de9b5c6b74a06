"""Each draft is logged with the scraped tweet's id and the draft's request id (to join them)."""

from __future__ import annotations

from datetime import UTC, datetime

from structlog.testing import capture_logs

from tests.scraper.test_store import tweet
from twitstack.core.sections.scraper import DraftRuleSpec
from twitstack.scraper.drafts import build_drafts


def test_a_draft_names_its_source_tweet_and_its_request() -> None:
    rule = DraftRuleSpec(template="Thanks {{ tweet.author }}!", as_account="team")
    scraped = [tweet(11, text="first"), tweet(12, text="second")]
    with capture_logs() as logs:
        made = build_drafts(rule, scraped, job="mentions", now=datetime(2026, 12, 1, tzinfo=UTC))
    created = [line for line in logs if line["event"] == "scraper.draft_created"]
    assert [(line["tweet_id"], line["request_id"]) for line in created] == [
        ("11", made[0].request.id),
        ("12", made[1].request.id),
    ]
    for line in created:
        assert (line["job"], line["account"], line["action"]) == (
            "mentions",
            rule.writer_account,
            "tweet",
        )
        assert line["log_level"] == "info"
