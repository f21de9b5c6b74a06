"""Reliable consumption of write_queue: BLMOVE into a processing list, ack, recover, dead-letter.

Each consumer has a stable id, a processing list and a heartbeat key with a TTL. A message
stays in Redis until acked or dead-lettered; if its consumer dies (kill -9), any live consumer
(or the same one restarting) puts it back once the heartbeat has lapsed. A message that was in
flight at `max_crashes` consumer deaths is treated as a poison pill and dead-lettered.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from twitstack.core.logging import get_logger
from twitstack.writes import keys, scripts
from twitstack.writes.ledger import RequestLedger, record_keys_and_args
from twitstack.writes.ledger_types import as_text
from twitstack.writes.models import ModerationStatus, WriteRequest, format_time, utcnow
from twitstack.writes.transitions import Change
from twitstack.writes.wire import decode_write_request

S = ModerationStatus
_log = get_logger("twitstack.writes.queue")

DEFAULT_MAX_CRASHES = 3
POISON_REASON = "crashed_consumer"
# The ledger reason of an approved request whose message was dead-lettered as a poison pill.
POISON_MESSAGE_REASON = "poison_message"


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What one recovery pass did."""

    requeued: int = 0
    dead_lettered: int = 0
    consumers: list[str] = field(default_factory=list)  # whose messages were recovered
    # Approved requests flagged needs_review because their message was a poison pill.
    flagged: list[WriteRequest] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QueueDepths:
    """Sizes an operator watches: waiting, in flight (all consumers), dead, scheduled."""

    queued: int
    processing: int
    dead: int
    scheduled: int


def message_digest(raw: bytes) -> str:
    """The SHA-1 hex a message's crash counter is filed under (matches Lua's sha1hex)."""
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()


def dead_letter_record(
    raw: bytes, *, reason: str, detail: str, consumer: str, time: datetime | None = None
) -> dict[str, str | None]:
    """The JSON record kept in write_queue:dead: {reason, detail, raw, raw_b64, consumer, time}.

    `raw` is the message text when it is valid UTF-8 (else null, and `raw_b64` holds the bytes),
    so an operator can read, fix and re-push it.
    """
    try:
        text: str | None = raw.decode("utf-8")
        encoded: str | None = None
    except UnicodeDecodeError:
        text, encoded = None, base64.b64encode(raw).decode("ascii")
    return {
        "reason": reason,
        "detail": detail,
        "raw": text,
        "raw_b64": encoded,
        "consumer": consumer,
        "time": format_time(time or utcnow()),
    }


class ReliableQueue:
    """One consumer's view of a Redis list queue (write_queue by default).

    Call `heartbeat()` before the first `take()` and then every `heartbeat_ttl_s / 3` or so from
    a task that keeps running while messages are processed (a long X call must not let the
    heartbeat lapse). At start-up call `recover_own()`; periodically call `recover_dead()`.
    The consumer id must be stable across restarts (e.g. "<host>-<n>") for `recover_own` to
    find its previous in-flight messages; others' are found through the heartbeat anyway.
    """

    def __init__(
        self,
        redis: Redis,
        consumer: str,
        *,
        source: str = keys.WRITE_QUEUE,
        heartbeat_ttl_s: float = 30.0,
        max_crashes: int = DEFAULT_MAX_CRASHES,
        ledger: RequestLedger | None = None,
    ) -> None:
        if not consumer or any(ch.isspace() for ch in consumer):
            raise ValueError(f"expected a consumer id without spaces, found {consumer!r}")
        if heartbeat_ttl_s <= 0 or max_crashes < 1:
            raise ValueError("heartbeat_ttl_s must be positive and max_crashes at least 1")
        self._redis = redis
        self.consumer = consumer
        self.source = source
        self.processing = keys.processing_list(consumer)
        self._heartbeat_key = keys.heartbeat(consumer)
        self._ttl_ms = max(1, int(heartbeat_ttl_s * 1000))
        self.max_crashes = max_crashes
        self._recover = scripts.register(redis, "recover")
        self._dead_letter = scripts.register(redis, "dead_letter")
        self._release = scripts.register(redis, "release")
        # With a ledger, dead-lettering a poison pill also flags the request it carried.
        self._ledger = ledger
        self._poison = scripts.register(redis, "dead_letter_poison")

    async def heartbeat(self) -> None:
        """Say this consumer is alive for another `heartbeat_ttl_s`."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._heartbeat_key, b"1", px=self._ttl_ms)
            pipe.sadd(keys.CONSUMERS, self.consumer)
            await pipe.execute()

    async def take(self, timeout_s: float) -> bytes | None:
        """The next message, moved atomically into this consumer's processing list.

        Blocks up to `timeout_s` (0 would block forever: avoid). The client's socket timeout
        must be longer than `timeout_s`.
        """
        # Redis takes fractional timeouts since 6.0; redis-py's annotation says int.
        raw = await self._redis.blmove(
            self.source,
            self.processing,
            timeout_s,  # type: ignore[arg-type]
            src="LEFT",
            dest="RIGHT",
        )
        if raw is None:
            return None
        return raw if isinstance(raw, bytes) else str(raw).encode("utf-8")

    async def in_flight(self) -> list[bytes]:
        """The messages this consumer holds, oldest first."""
        items = await self._redis.lrange(self.processing, 0, -1)
        return [item if isinstance(item, bytes) else str(item).encode("utf-8") for item in items]

    async def ack(self, raw: bytes) -> bool:
        """Done with `raw`: drop it from the processing list (and its crash count)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self.processing, 1, raw)  # type: ignore[arg-type]  # bytes are fine
            pipe.hdel(keys.CRASH_COUNTS, message_digest(raw))
            removed, _ = await pipe.execute()
        return bool(removed)

    async def release(self, raw: bytes) -> bool:
        """Give `raw` back unprocessed, at the head of the queue (shutting down, Redis hiccup)."""
        return bool(await self._release(keys=[self.processing, self.source], args=[raw]))

    async def dead_letter(self, raw: bytes, *, reason: str, detail: str) -> bool:
        """Move `raw` from this consumer's processing list to write_queue:dead with a reason."""
        return await self._dead_letter_from(self.processing, raw, reason=reason, detail=detail)

    async def recover_own(self) -> RecoveryReport:
        """At start-up: whatever this consumer held when it last stopped goes back to the queue."""
        return await self._recover_consumer(self.consumer, force=True)

    async def recover_dead(self) -> RecoveryReport:
        """Requeue the in-flight messages of every other consumer whose heartbeat has lapsed."""
        members = await consumer_names(self._redis)
        requeued = dead = 0
        recovered: list[str] = []
        flagged: list[WriteRequest] = []
        for member in members:
            if member == self.consumer:
                continue
            try:
                report = await self._recover_consumer(member, force=False)
            except ResponseError as exc:
                # Its processing key is not a list (junk written by hand): the other consumers
                # must still be recovered. Nothing to requeue from it; an operator clears it.
                _log.warning("queue.consumer_unreadable", consumer=member, error=str(exc))
                continue
            requeued += report.requeued
            dead += report.dead_lettered
            recovered.extend(report.consumers)
            flagged.extend(report.flagged)
        return RecoveryReport(requeued, dead, recovered, flagged)

    async def leave(self) -> bool:
        """On clean shutdown: forget this consumer; False (and no change) if it still holds work."""
        if await self._redis.llen(self.processing):
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._heartbeat_key)
            pipe.srem(keys.CONSUMERS, self.consumer)
            await pipe.execute()
        return True

    async def depths(self) -> QueueDepths:
        """Queue, processing (all consumers), dead-letter and schedule sizes."""
        members = await consumer_names(self._redis)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.llen(self.source)
            pipe.llen(keys.DEAD_LETTER)
            pipe.zcard(keys.SCHEDULE)
            sizes: list[int] = await pipe.execute()
        held = await list_lengths(self._redis, [keys.processing_list(m) for m in members])
        return QueueDepths(
            queued=int(sizes[0]),
            dead=int(sizes[1]),
            scheduled=int(sizes[2]),
            processing=sum(held),
        )

    async def _recover_consumer(self, consumer: str, *, force: bool) -> RecoveryReport:
        processing = keys.processing_list(consumer)
        moved, poison = await self._recover(
            keys=[
                processing,
                keys.heartbeat(consumer),
                self.source,
                keys.CRASH_COUNTS,
                keys.CONSUMERS,
            ],
            args=["1" if force else "0", self.max_crashes, consumer],
        )
        dead = 0
        flagged: list[WriteRequest] = []
        for raw in poison:
            detail = f"in flight at {self.max_crashes} consumer crashes (last: {consumer})"
            done, request = await self._dead_letter_poison(processing, bytes(raw), detail)
            dead += done
            if request is not None:
                flagged.append(request)
        touched = [consumer] if int(moved) or dead else []
        return RecoveryReport(int(moved), dead, touched, flagged)

    async def _dead_letter_poison(
        self, processing: str, raw: bytes, detail: str
    ) -> tuple[bool, WriteRequest | None]:
        """Dead-letter a poison pill; with a ledger, flag its approved request in the same step.

        Returns whether this call dead-lettered it, and the request it flagged (if any).
        """
        request = _approved_request(raw) if self._ledger is not None else None
        if self._ledger is None or request is None:
            done = await self._dead_letter_from(
                processing, raw, reason=POISON_REASON, detail=detail
            )
            return done, None
        actor = f"queue:{self.consumer}"
        transition_keys, transition_args = self._ledger.transitions.keys_and_args(
            request.id, frozenset({S.APPROVED}), S.NEEDS_REVIEW, actor=actor,
            reason=POISON_MESSAGE_REASON, expected_revision=None, change=Change(),
        )  # fmt: skip
        held = replace(request, moderation=S.NEEDS_REVIEW, approval=None)
        _, record_args, _ = record_keys_and_args(
            held, actor=actor, reason=POISON_MESSAGE_REASON,
            events_maxlen=self._ledger.events_maxlen,
        )  # fmt: skip
        record = dead_letter_record(
            raw, reason=POISON_REASON, detail=detail, consumer=self.consumer
        )
        reply = await self._poison(
            keys=[*transition_keys, processing, keys.DEAD_LETTER, keys.CRASH_COUNTS],
            args=[*transition_args, *record_args, raw,
                  json.dumps(record, ensure_ascii=False), message_digest(raw)],
        )  # fmt: skip
        done = bool(int(reply[0]))
        changed = as_text(reply[1]) in ("ok", "recorded")
        return done, held if done and changed else None

    async def _dead_letter_from(
        self, processing: str, raw: bytes, *, reason: str, detail: str
    ) -> bool:
        record = dead_letter_record(raw, reason=reason, detail=detail, consumer=self.consumer)
        done = await self._dead_letter(
            keys=[processing, keys.DEAD_LETTER, keys.CRASH_COUNTS],
            args=[raw, json.dumps(record, ensure_ascii=False), message_digest(raw)],
        )
        return bool(done)


def _approved_request(raw: bytes) -> WriteRequest | None:
    """The approved request a poison message carries, if it decodes to one."""
    try:
        request = decode_write_request(raw)
    except Exception:  # a pill may break anything; it is dead-lettered anyway
        return None
    return request if request.moderation is S.APPROVED else None


def parse_dead_letter(raw: bytes | str) -> dict[str, str | None]:
    """A dead-letter record as written by `dead_letter_record`."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object in write_queue:dead")
    return {str(key): None if value is None else str(value) for key, value in data.items()}


async def consumer_names(redis: Redis) -> list[str]:
    """The registered consumers, sorted; members that are not UTF-8 text are passed over.

    Anyone with Redis access can SADD anything here: one junk member must not stop recovery
    of every other consumer, nor the depth gauges (no consumer ever registers such a name).
    """
    names: list[str] = []
    for member in await redis.smembers(keys.CONSUMERS):
        try:
            names.append(as_text(member))
        except UnicodeDecodeError:
            _log.warning("queue.consumer_unreadable", consumer=repr(member)[:100])
    return sorted(names)


async def list_lengths(redis: Redis, names: list[str]) -> list[int]:
    """LLEN of each key in one round trip; a key of another type counts as empty."""
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(name)
        replies: list[object] = await pipe.execute(raise_on_error=False)
    return [reply if isinstance(reply, int) else 0 for reply in replies]
