"""Producing write requests from the command line, and reading the write queue's vital signs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from twitstack.writes import keys
from twitstack.writes.errors import PayloadError, WireFormatError
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.ledger_types import epoch_ms
from twitstack.writes.models import (
    ModerationStatus,
    WriteAction,
    WriteRequest,
    format_time,
    new_request_id,
    parse_time,
    utcnow,
)
from twitstack.writes.post_ref import parse_post_ref
from twitstack.writes.queue import QueueDepths, ReliableQueue, consumer_names, list_lengths
from twitstack.writes.wire import decode_write_request, encode_write_request

# A CLI-made request always waits for a moderator: only the moderation service signs approvals.
_CLI_STATES = frozenset({ModerationStatus.PENDING})
# ReliableQueue needs a consumer id even to read depths; this one never takes a message.
_STATS_CONSUMER = "ops-queue-stats"


def tweet_payload(
    text: str,
    *,
    reply_to: str | None = None,
    quote: str | None = None,
    poll: Sequence[str] | None = None,
    poll_minutes: int | None = None,
) -> dict[str, Any]:
    """The payload of a tweet, optionally a reply, a quote or a poll (validated by the decoder).

    `quote` may be a post URL on x.com or twitter.com: its id is taken (PayloadError if none).
    A poll needs both options and minutes; one without the other is refused here.
    """
    payload: dict[str, Any] = {"text": text}
    if reply_to is not None:
        payload["reply"] = {"in_reply_to_tweet_id": reply_to}
    if quote is not None:
        # A URL is reduced to its id; anything else goes to the decoder as given.
        payload["quote_tweet_id"] = parse_post_ref(quote) if "/" in quote else quote
    if poll or poll_minutes is not None:
        if not poll or poll_minutes is None:
            raise PayloadError("payload.poll", "expected poll options and a duration together")
        payload["poll"] = {"options": list(poll), "duration_minutes": poll_minutes}
    return payload


def thread_payload(parts: Sequence[str], *, reply_to: str | None = None) -> dict[str, Any]:
    """The payload of a thread: one part per text, in order (validated by the decoder)."""
    payload: dict[str, Any] = {"parts": [{"text": text} for text in parts]}
    if reply_to is not None:
        payload["reply"] = {"in_reply_to_tweet_id": reply_to}
    return payload


def dm_payload(recipient_id: str, text: str) -> dict[str, Any]:
    """The payload of a one-to-one DM."""
    return {"recipient_id": recipient_id, "text": text}


def delete_payload(tweet_id: str) -> dict[str, Any]:
    """The payload of a tweet deletion."""
    return {"tweet_id": tweet_id}


def build_message(
    action: WriteAction,
    payload: Mapping[str, Any],
    *,
    account: str,
    author: str | None = None,
    not_before: str | None = None,
    expires_at: str | None = None,
    now: datetime | None = None,
) -> tuple[WriteRequest, bytes]:
    """A new pending request and its queue bytes; raises WireFormatError like the writer would.

    The message is assembled as a producer would send it and then run through the writer's own
    wire decoder, so the CLI accepts exactly what the queue accepts, with the same messages.
    """
    data: dict[str, Any] = {
        "id": new_request_id(),
        "action": WriteAction(action).value,
        "payload": dict(payload),
        "created_at": format_time(now or utcnow()),
        "moderation": ModerationStatus.PENDING.value,
        "account": account,
    }
    optional = {"author": author, "not_before": not_before, "expires_at": expires_at}
    data.update({name: value for name, value in optional.items() if value is not None})
    # surrogatepass: undecodable argv bytes reach the decoder, which names them (invalid_utf8).
    raw = json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")
    request = decode_write_request(raw, allowed_states=_CLI_STATES)
    return request, encode_write_request(request)


async def enqueue(redis: Redis, message: bytes) -> int:
    """RPUSH one message onto write_queue; the queue's new length."""
    return int(await redis.rpush(keys.WRITE_QUEUE, message))


@dataclass(frozen=True)
class ConsumerState:
    """One writer consumer: how many messages it holds and whether its heartbeat is live."""

    name: str
    in_flight: int
    alive: bool


@dataclass(frozen=True)
class QueueStats:
    """Everything `twitstack queue stats` shows."""

    depths: QueueDepths
    states: Mapping[ModerationStatus, int]
    consumers: tuple[ConsumerState, ...]
    oldest_pending_age_s: float | None
    oldest_queued_age_s: float | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (ages in seconds, None when nothing waits)."""
        return {
            "queued": self.depths.queued,
            "processing": self.depths.processing,
            "dead": self.depths.dead,
            "scheduled": self.depths.scheduled,
            "states": {state.value: count for state, count in self.states.items()},
            "consumers": [
                {"name": c.name, "in_flight": c.in_flight, "alive": c.alive} for c in self.consumers
            ],
            "oldest_pending_age_s": _rounded(self.oldest_pending_age_s),
            "oldest_queued_age_s": _rounded(self.oldest_queued_age_s),
        }


async def queue_stats(redis: Redis, *, now: datetime | None = None) -> QueueStats:
    """Depths, requests per ledger state, consumers and the oldest waiting ages."""
    moment = now or utcnow()
    depths = await ReliableQueue(redis, _STATS_CONSUMER).depths()
    states = await RequestLedger(redis).counts()
    return QueueStats(
        depths=depths,
        states=states,
        consumers=await _consumers(redis),
        oldest_pending_age_s=await _oldest_pending_age(redis, moment),
        oldest_queued_age_s=await _oldest_queued_age(redis, moment),
    )


async def _consumers(redis: Redis) -> tuple[ConsumerState, ...]:
    names = await consumer_names(redis)
    held = await list_lengths(redis, [keys.processing_list(name) for name in names])
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.exists(keys.heartbeat(name))
        alive: list[int] = await pipe.execute()
    return tuple(ConsumerState(name, held[i], bool(alive[i])) for i, name in enumerate(names))


async def _oldest_pending_age(redis: Redis, now: datetime) -> float | None:
    # The pending index is scored by creation time (ms), like the writer's oldest-pending gauge.
    oldest = await redis.zrange(keys.state_index(ModerationStatus.PENDING), 0, 0, withscores=True)
    if not oldest:
        return None
    return max((epoch_ms(now) - float(oldest[0][1])) / 1000, 0.0)


async def _oldest_queued_age(redis: Redis, now: datetime) -> float | None:
    # Consumers take from the left, so index 0 is the next (and oldest) message.
    head = await redis.lindex(keys.WRITE_QUEUE, 0)
    if head is None:
        return None
    try:
        data = json.loads(head)
        created = parse_time(data["created_at"], "created_at")
    except (ValueError, TypeError, KeyError, WireFormatError):
        # A message without a readable created_at (it will be dead-lettered): age unknown.
        return None
    return max((now - created).total_seconds(), 0.0)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
