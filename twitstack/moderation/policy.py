"""Policy warnings shown to moderators: X refusals, length, cashtags, URL price, reply rules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from twitstack.writes.text import MAX_TWEET_WEIGHTED_LENGTH, tweet_weighted_length

# X's cashtag shape: $ and 1-6 letters, optionally a .X or _X suffix of 1-2 letters.
_CASHTAG = re.compile(r"(?<![\w$])\$[A-Za-z]{1,6}(?:[._][A-Za-z]{1,2})?(?![\w])")
PRICE_POST_USD = 0.015
PRICE_POST_WITH_URL_USD = 0.200


@dataclass(frozen=True)
class PolicyWarning:
    """One thing a moderator should know before approving; `block` ones X would refuse."""

    code: str
    message: str
    level: Literal["block", "warn", "info"]


def refusal_of(source: Mapping[str, Any] | None) -> str:
    """Why X would refuse the draft, as the scraper recorded it in `source.refusal` ('' if none)."""
    refusal = source.get("refusal") if source is not None else None
    return refusal.strip() if isinstance(refusal, str) else ""


def cashtags(text: str) -> list[str]:
    return _CASHTAG.findall(text)


def check_request(
    action: str,
    payload: Mapping[str, Any],
    *,
    account: str,
    source: Mapping[str, Any] | None,
) -> list[PolicyWarning]:
    """Warnings for one request as it would be sent; X's refusal reason (from the source) first."""
    warnings: list[PolicyWarning] = []
    refusal = refusal_of(source)
    if refusal:
        warnings.append(PolicyWarning("x_refusal", f"X would refuse this: {refusal}", "block"))
    if action == "thread":
        return warnings + _thread_warnings(payload, account=account, source=source)
    text = payload.get("text")
    if action != "tweet" or not isinstance(text, str):
        return warnings
    weighted = tweet_weighted_length(text)
    if weighted > MAX_TWEET_WEIGHTED_LENGTH:
        warnings.append(
            PolicyWarning(
                "over_length",
                f"{weighted} weighted characters; X allows {MAX_TWEET_WEIGHTED_LENGTH}.",
                "block",
            )
        )
    tags = cashtags(text)
    if len(tags) > 1:
        warnings.append(
            PolicyWarning(
                "cashtags",
                f"{len(tags)} cashtags ({', '.join(tags)}); X allows one per post.",
                "block",
            )
        )
    from twitter_text import extract_urls  # ~16 MiB: loaded on the first check, not at start

    if extract_urls(text):
        warnings.append(
            PolicyWarning(
                "url_price",
                f"Contains a URL: costs ${PRICE_POST_WITH_URL_USD:.3f} instead of "
                f"${PRICE_POST_USD:.3f}.",
                "warn",
            )
        )
    reply = payload.get("reply")
    if isinstance(reply, Mapping) and reply.get("in_reply_to_tweet_id"):
        warnings.extend(_reply_warning(account, source))
    return warnings


def _thread_warnings(
    payload: Mapping[str, Any], *, account: str, source: Mapping[str, Any] | None
) -> list[PolicyWarning]:
    """Each part's warnings as a tweet's, prefixed with the part (the first answers `reply`)."""
    parts = payload.get("parts")
    found: list[PolicyWarning] = []
    for index, part in enumerate(parts if isinstance(parts, list) else []):
        if not isinstance(part, Mapping):
            continue
        # Only the first part answers someone; the others answer the thread itself.
        as_tweet = (
            {**part, "reply": payload["reply"]} if index == 0 and "reply" in payload else part
        )
        seen = source if index == 0 else None
        for warning in check_request("tweet", as_tweet, account=account, source=seen):
            if warning.code == "x_refusal":
                continue  # the thread's own, listed once
            found.append(
                PolicyWarning(warning.code, f"Part {index + 1}: {warning.message}", warning.level)
            )
    return found


def _reply_warning(account: str, source: Mapping[str, Any] | None) -> list[PolicyWarning]:
    # Pay-per-use apps may only reply when the original author summoned the account
    # (mentioned it or quoted one of its posts); other replies are rejected by X.
    if source is None:
        return [
            PolicyWarning(
                "reply_unverified",
                "Reply without the source tweet: cannot check that its author mentioned or "
                f"quoted @{account}; X rejects unsummoned replies on pay-per-use apps.",
                "warn",
            )
        ]
    source_text = str(source.get("text") or "")
    if f"@{account.lower()}" in source_text.lower():
        return []
    return [
        PolicyWarning(
            "reply_not_summoned",
            f"The author of the source tweet has not mentioned or quoted @{account}; "
            "X rejects this reply on pay-per-use apps.",
            "warn",
        )
    ]
