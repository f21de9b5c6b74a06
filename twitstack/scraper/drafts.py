"""Draft rules: new matching tweets become pending reply/quote requests for `write_queue`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from twitstack.core.logging import get_logger
from twitstack.core.sections.draft_template import TemplateRenderError, render_template
from twitstack.core.sections.scraper import DraftRuleSpec
from twitstack.scraper.models import ScrapedTweet
from twitstack.scraper.outbox import OutboxMessage
from twitstack.writes.errors import PayloadError
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest, format_time
from twitstack.writes.validation import validate_request
from twitstack.writes.wire import encode_write_request

log = get_logger("twitstack.scraper.drafts")


@dataclass(frozen=True, slots=True)
class Draft:
    request: WriteRequest
    # Why X would refuse it (API replies only reach authors who mentioned or quoted us).
    refusal: str | None


def matches(rule: DraftRuleSpec, tweet: ScrapedTweet) -> bool:
    """Whether a new tweet should get a draft under this rule (a retweet is judged by the
    original it repeats: its text, likes and author)."""
    tweet = tweet.original
    if tweet.author_username.lower() == rule.as_account.lower():
        return False  # never answer ourselves
    text = tweet.text.lower()
    if rule.match_any and not any(word.lower() in text for word in rule.match_any):
        return False
    if rule.match_regex and not re.search(rule.match_regex, tweet.text, re.IGNORECASE):
        return False
    if rule.langs and tweet.lang not in rule.langs:
        return False
    return tweet.like_count >= rule.min_likes


def refusal_reason(rule: DraftRuleSpec, tweet: ScrapedTweet) -> str | None:
    """Why X would refuse this draft, or None if it can be posted."""
    if rule.action != "reply":
        return None
    me = rule.as_account.lower()
    if me in tweet.mentioned_usernames or (tweet.quoted_author_username or "").lower() == me:
        return None
    return f"@{tweet.author_username} did not mention or quote @{rule.as_account}"


def source_record(tweet: ScrapedTweet, *, job: str, scraped_at: datetime) -> dict[str, Any]:
    """What moderators see of the tweet being answered (for a retweet: the original)."""
    tweet = tweet.original
    return {
        "id": str(tweet.id),
        "author": tweet.author_username,
        "author_id": str(tweet.author_id),
        "text": tweet.text,
        "url": f"https://x.com/{tweet.author_username}/status/{tweet.id}",
        "lang": tweet.lang,
        "counts": {
            "likes": tweet.like_count,
            "retweets": tweet.retweet_count,
            "replies": tweet.reply_count,
            "quotes": tweet.quote_count,
        },
        "created_at": format_time(tweet.created_at),
        "scraped_at": format_time(scraped_at),
        "job": job,
    }


def build_drafts(
    rule: DraftRuleSpec,
    tweets: Sequence[ScrapedTweet],
    *,
    job: str,
    now: datetime,
    limit: int | None = None,
) -> list[Draft]:
    """Drafts for the new tweets that match, oldest first, at most `limit` (`max_per_run`).

    A retweet's draft replies to or quotes the original (one draft per original per batch):
    answering the retweet would address the retweeter about someone else's words.
    """
    most = rule.max_per_run if limit is None else min(limit, rule.max_per_run)
    drafts: list[Draft] = []
    answered: set[int] = set()
    for tweet in sorted(tweets, key=lambda t: t.id):
        target = tweet.original
        if len(drafts) >= most or target.id in answered or not matches(rule, tweet):
            continue
        try:
            text = render_template(rule.template, {"tweet": _template_view(tweet), "job": job})
        except TemplateRenderError as exc:
            log.warning("scraper.draft_template_failed", job=job, tweet_id=tweet.id, error=str(exc))
            continue
        payload: dict[str, Any] = {"text": text}
        if rule.action == "reply":
            payload["reply"] = {"in_reply_to_tweet_id": str(target.id)}
        else:
            payload["quote_tweet_id"] = str(target.id)
        answered.add(target.id)
        refusal = refusal_reason(rule, target)
        source = source_record(tweet, job=job, scraped_at=now)
        if refusal is not None:
            source["refusal"] = refusal
        request = WriteRequest(
            action=WriteAction.TWEET,
            payload=payload,
            created_at=now,
            moderation=ModerationStatus.PENDING,
            account=rule.writer_account,
            author=f"scraper:{job}",
            source=source,
        )
        try:
            validate_request(request)
        except PayloadError as exc:
            log.warning("scraper.draft_invalid", job=job, tweet_id=tweet.id, error=str(exc))
            continue
        drafts.append(Draft(request, refusal))
        # Joins the scraped tweet to its draft's request id in the logs.
        log.info(
            "scraper.draft_created",
            job=job,
            tweet_id=str(tweet.id),
            target_tweet_id=str(target.id),
            request_id=request.id,
            account=request.account,
            action=str(request.action),
            refusal=refusal,
        )
    return drafts


def outbox_messages(drafts: Sequence[Draft], *, job: str, run_id: int) -> list[OutboxMessage]:
    """The drafts as outbox rows: wire bytes encoded once, so every push carries the same id."""
    return [
        OutboxMessage(
            request_id=d.request.id,
            job=job,
            run_id=run_id,
            message=encode_write_request(d.request),
            refusable=d.refusal is not None,
        )
        for d in drafts
    ]


def _template_view(scraped: ScrapedTweet) -> dict[str, Any]:
    """`tweet` in a template: the tweet being answered (a retweet's original). Its keys are
    draft_template.TWEET_FIELDS, which the settings check templates against."""
    tweet = scraped.original
    return {
        "id": str(tweet.id),
        "author": tweet.author_username,
        "author_id": str(tweet.author_id),
        "text": tweet.text,
        "lang": tweet.lang,
        "likes": tweet.like_count,
        "retweets": tweet.retweet_count,
        "replies": tweet.reply_count,
        "quotes": tweet.quote_count,
        "url": f"https://x.com/{tweet.author_username}/status/{tweet.id}",
        "created_at": tweet.created_at.astimezone(UTC).isoformat(),
        "retweeted_by": scraped.author_username if scraped is not tweet else "",
    }
