"""The X write calls a request becomes: method, path, body and rate-limit bucket, and the
classified reply."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twitstack.writer.outcome import Method, Outcome

_TWEET_FIELDS = ("text", "reply", "quote_tweet_id", "media", "poll", "reply_settings")


@dataclass(frozen=True, slots=True)
class XCall:
    """One write call: HTTP method and path, JSON body, and the rate-limit bucket it spends."""

    method: Method
    path: str
    endpoint: str
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class XReply:
    """The classified result of one call plus what the rate limiter and metrics need."""

    outcome: Outcome
    headers: Mapping[str, str]
    elapsed_s: float


def tweet_call(text: str | None, **params: Any) -> XCall:
    """POST /2/tweets with `text` and X's optional tweet fields (reply, media, poll, ...).

    `text` None leaves it out: a post of media alone."""
    body = {"text": text, **{k: v for k, v in params.items() if v is not None}}
    if text is None:
        del body["text"]
    return XCall("POST", "/2/tweets", "tweets.create", body)


def dm_call(recipient_id: str, text: str, **params: Any) -> XCall:
    """POST a DM to the one-to-one conversation with `recipient_id`."""
    body = {"text": text, **{k: v for k, v in params.items() if v is not None}}
    return XCall("POST", f"/2/dm_conversations/with/{recipient_id}/messages", "dm.create", body)


def delete_call(tweet_id: str) -> XCall:
    """DELETE /2/tweets/:id."""
    return XCall("DELETE", f"/2/tweets/{tweet_id}", "tweets.delete")


def call_for(action: str, payload: Mapping[str, Any]) -> XCall:
    """Translate a validated write request (action + payload) into its X call."""
    if action == "tweet":
        extra = {k: payload[k] for k in _TWEET_FIELDS if k in payload and k != "text"}
        text = payload.get("text")
        return tweet_call(None if text is None else str(text), **extra)
    if action == "dm":
        return dm_call(str(payload["recipient_id"]), str(payload["text"]))
    if action == "delete":
        return delete_call(str(payload["tweet_id"]))
    raise ValueError(f"expected action tweet, dm or delete, found {action!r}")
