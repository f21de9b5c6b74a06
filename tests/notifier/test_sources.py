"""Where notifications come from: events (once, across restarts), waiting requests, accounts,
dead letters; and hostile records in Redis, which are quarantined, not fatal."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from tests.notifier.conftest import BASE, HOOK_KEY, RunNotifier, needs_review, sample
from tests.notifier.receivers import WebhookReceiver, wait_until, wait_until_async
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest, utcnow

pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> WebhookReceiver:
    hook = WebhookReceiver(HOOK_KEY)
    monkeypatch.setenv("TEST_HOOK_URL", f"{hook.url}/hook")
    return hook


WEBHOOK = {"webhook": {"url_secret": "TEST_HOOK_URL", "signing_key_secret": "TEST_HOOK_KEY"}}


def events_of(receiver: WebhookReceiver, event: str) -> list[dict[str, object]]:
    return [hit.body for hit in receiver.delivered() if hit.body["event"] == event]


async def test_restart_sends_nothing_twice_and_history_is_not_replayed(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, receiver: WebhookReceiver
) -> None:
    """Events before the first start are history; after a restart only new ones are sent."""
    old = await needs_review(redis, "before the notifier ever ran")
    settings = notifier_settings(**WEBHOOK)
    async with receiver.serving():
        async with run_notifier(settings):
            first = await needs_review(redis, "first")
            await wait_until(lambda: len(receiver.delivered()) == 1)
        async with run_notifier(settings):
            second = await needs_review(redis, "second")
            await wait_until(lambda: len(receiver.delivered()) == 2)
    sent = [hit.body["requests"][0]["id"] for hit in receiver.delivered()]  # type: ignore[index]
    assert sent == [first, second]
    assert old not in sent
    assert len(receiver.hits) == 2  # no repeat delivery either


async def test_a_burst_of_failures_is_one_notification(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, receiver: WebhookReceiver
) -> None:
    """Events read in one batch are grouped per kind: no storm of messages."""
    settings = notifier_settings(**WEBHOOK)
    ids = {await needs_review(redis, f"burst {n}") for n in range(30)}
    await redis.hdel(keys.NOTIFY_STATE, "cursor")
    await redis.hset(keys.NOTIFY_STATE, "cursor", "0-0")  # read them all in one go
    async with receiver.serving(), run_notifier(settings):
        await wait_until(lambda: sum(len(h.body["requests"]) + h.body["more"]  # type: ignore[arg-type, operator]
                                     for h in receiver.delivered()) == 30)  # fmt: skip
    bodies = receiver.delivered()
    assert len(bodies) == 1
    body = bodies[0].body
    assert body["title"] == "30 requests need review"
    assert body["url"] == f"{BASE}/history?tab=needs_review"
    assert {r["id"] for r in body["requests"]} <= ids  # type: ignore[union-attr, index]


async def test_hostile_records_are_quarantined_and_the_rest_delivered(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, receiver: WebhookReceiver
) -> None:
    """A junk event, a junk outbox item and a junk cursor do not stop good notifications."""
    settings = notifier_settings(**WEBHOOK)
    async with receiver.serving(), run_notifier(settings) as service:
        await redis.xadd(keys.EVENTS, {"id": "x", "to": "exploded", "time": "yesterday"})
        await redis.hset(keys.NOTIFY_ITEMS, "junk|webhook", b"\xff not json")
        await redis.zadd(keys.NOTIFY_OUTBOX, {"junk|webhook": 0})
        good = await needs_review(redis, "still delivered")
        await wait_until(lambda: len(receiver.delivered()) == 1)
        await wait_until(
            lambda: sample(service, "twitstack_quarantined_total", source="event",
                           reason="malformed_event") == 1
            and sample(service, "twitstack_quarantined_total", source="notification",
                       reason="malformed_notification") == 1
        )  # fmt: skip
        await redis.hset(keys.NOTIFY_STATE, "cursor", "not-a-stream-id")
        after = await needs_review(redis, "after the cursor was spoiled")
        # The notifier goes back to the cursor it last used: nothing written meanwhile is lost.
        await wait_until(lambda: after in str([h.body for h in receiver.delivered()]))
    assert good in str([hit.body for hit in receiver.delivered()])
    dead = [json.loads(raw) for raw in await redis.lrange(keys.NOTIFY_DEAD, 0, -1)]
    assert [d["id"] for d in dead] == ["junk|webhook"]
    assert await redis.lrange(keys.QUARANTINE, 0, -1)


async def test_waiting_requests_are_reported_once(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, receiver: WebhookReceiver
) -> None:
    """A request pending longer than waiting_after_min is reported on one check, not every."""
    ledger = RequestLedger(redis)
    old = WriteRequest(
        action=WriteAction.TWEET, payload={"text": "been here a while"},
        created_at=utcnow() - timedelta(hours=2),
    )  # fmt: skip
    fresh = WriteRequest(action=WriteAction.TWEET, payload={"text": "just arrived"})
    await ledger.record(old, actor="test")
    await ledger.record(fresh, actor="test")
    settings = notifier_settings(**WEBHOOK, waiting_after_min=30)
    async with receiver.serving(), run_notifier(settings) as service:
        await wait_until(lambda: len(events_of(receiver, "waiting")) == 1)
        last_check = "notifier_last_check_timestamp_seconds"
        first = sample(service, last_check)
        # Three more checks (0.1 s apart): a second report would be scheduled by one of them.
        await wait_until(lambda: sample(service, last_check) > first + 0.3)
        await wait_until(lambda: sample(service, "notifier_outbox_depth") == 0)
    [waiting] = events_of(receiver, "waiting")
    assert [r["id"] for r in waiting["requests"]] == [old.id]  # type: ignore[union-attr, index]
    assert waiting["url"] == f"{BASE}/requests/{old.id}"
    assert "30 min" in str(waiting["title"])
    assert len(events_of(receiver, "waiting")) == 1


async def test_reconnect_needed_is_reported_once_per_episode(
    notifier_settings,
    run_notifier: RunNotifier,
    redis: Redis,
    receiver: WebhookReceiver,
    make_settings,
) -> None:
    """The writer's reconnect mark on an account gives one notification linking to Accounts."""
    settings = notifier_settings(**WEBHOOK)
    accounts = [{"name": "brand", "user_id": "42", "access_token_secret": "T"}]
    settings = settings.model_copy(
        update={
            "writer": settings.writer.model_copy(
                update={
                    "accounts": tuple(
                        type(settings.writer).model_validate({"accounts": accounts}).accounts
                    )
                }
            )
        }
    )
    await redis.hset(
        keys.oauth2_tokens("brand"),
        mapping={"reconnect_needed": "1", "reconnect_reason": "invalid_grant"},
    )
    async with receiver.serving(), run_notifier(settings):
        await wait_until(lambda: len(events_of(receiver, "reconnect")) == 1)
        await redis.hdel(keys.oauth2_tokens("brand"), "reconnect_needed")

        async def forgotten() -> bool:
            return not await redis.hexists(keys.NOTIFY_STATE, "reconnect:brand")

        await wait_until_async(forgotten)
        # Cleared, then refused again: a new episode, a new notification.
        await redis.hset(keys.oauth2_tokens("brand"), "reconnect_needed", "1")
        await wait_until(lambda: len(events_of(receiver, "reconnect")) == 2)
    first = events_of(receiver, "reconnect")[0]
    assert first["url"] == f"{BASE}/accounts"
    assert "invalid_grant" in str(first["title"])


async def test_new_dead_letters_are_reported(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, receiver: WebhookReceiver
) -> None:
    """Dead letters already there at the first look are the baseline; new ones are reported."""
    await redis.rpush(keys.DEAD_LETTER, b"old poison")
    settings = notifier_settings(**WEBHOOK)
    async with receiver.serving(), run_notifier(settings):

        async def baseline() -> bool:
            return await redis.hexists(keys.NOTIFY_STATE, "dead_letter_marks")

        await wait_until_async(baseline)
        await redis.rpush(keys.DEAD_LETTER, b"new poison 1", b"new poison 2")
        await wait_until(lambda: len(events_of(receiver, "dead_letter")) == 1)
    [body] = events_of(receiver, "dead_letter")
    assert body["url"] == f"{BASE}/dead-letters"
    assert str(body["title"]).startswith("2 new dead letters (3 in all)")


async def test_a_poison_event_is_quarantined_and_later_events_notified(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, receiver: WebhookReceiver
) -> None:
    """An event that fails every time (its result nests too deep to parse: RecursionError, not
    a quarantinable read error) is tried a bounded number of times, quarantined, and passed
    over; the events before and after it are notified."""
    settings = notifier_settings(**WEBHOOK)
    async with receiver.serving(), run_notifier(settings) as service:
        before = await needs_review(redis, "before the poison")
        poison = await redis.xadd(
            keys.EVENTS,
            {"id": "poison", "from": "approved", "to": "failed", "time": utcnow().isoformat(),
             "result": "[" * 100_000},
        )  # fmt: skip
        after = await needs_review(redis, "after the poison")
        await wait_until(lambda: after in str([h.body for h in receiver.delivered()]))
        await wait_until(
            lambda: sample(service, "twitstack_quarantined_total", source="event",
                           reason="unprocessable_event") == 1
        )  # fmt: skip
    sent = [r["id"] for h in receiver.delivered() if h.body["event"] == "needs_review"
            for r in h.body["requests"]]  # type: ignore[union-attr]  # fmt: skip
    assert sorted(sent) == sorted([before, after])
    [entry] = [json.loads(raw) for raw in await redis.lrange(keys.QUARANTINE, 0, -1)]
    assert (entry["service"], entry["source"], entry["ref"]) == (
        "notifier",
        "event",
        poison.decode(),
    )
    assert entry["reason"] == "unprocessable_event"
    assert "RecursionError" in entry["detail"]
    assert await redis.hget(keys.NOTIFY_STATE, "cursor") not in (None, poison)


async def test_dead_letters_arriving_while_others_are_cleared_are_reported(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, receiver: WebhookReceiver
) -> None:
    """Arrivals are counted, not net growth: one purged and two new between two looks (and one
    quarantine entry cleared while another arrives) still report the three new ones."""
    await redis.rpush(
        keys.DEAD_LETTER, json.dumps({"reason": "old", "time": "2026-01-01T00:00:00Z"})
    )
    await redis.lpush(keys.QUARANTINE, json.dumps({"at": 1.0, "ref": "old"}))
    await redis.sadd(keys.QUARANTINED_REFS, "event:old")
    settings = notifier_settings(**WEBHOOK)
    async with receiver.serving(), run_notifier(settings):

        async def baseline() -> bool:
            return await redis.hexists(keys.NOTIFY_STATE, "dead_letter_marks")

        await wait_until_async(baseline)
        now = utcnow()
        async with redis.pipeline(transaction=True) as pipe:  # within one interval, atomically
            pipe.delete(keys.DEAD_LETTER)  # an operator purges the old one ...
            pipe.rpush(keys.DEAD_LETTER, json.dumps({"reason": "a", "time": now.isoformat()}),
                       json.dumps({"reason": "b", "time": now.isoformat()}))  # fmt: skip
            pipe.delete(keys.QUARANTINE, keys.QUARANTINED_REFS)  # ... and clears the quarantine
            pipe.lpush(keys.QUARANTINE, json.dumps({"at": now.timestamp(), "ref": "new"}))
            pipe.sadd(keys.QUARANTINED_REFS, "event:new")
            await pipe.execute()
        await wait_until(lambda: len(events_of(receiver, "dead_letter")) == 1)
    [body] = events_of(receiver, "dead_letter")
    assert str(body["title"]).startswith("3 new dead letters (3 in all)")


async def _age_notifier_memory(redis: Redis, days: float) -> None:
    """Move every time the notifier keeps in a sorted set `days` into the past."""
    async for key in redis.scan_iter(match="twitstack:notify:*"):
        if await redis.type(key) == b"zset":
            rows = await redis.zrange(key, 0, -1, withscores=True)
            await redis.zadd(key, {m: s - days * 86_400_000 for m, s in rows})


async def test_a_request_pending_for_months_is_reported_waiting_once(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, receiver: WebhookReceiver
) -> None:
    """Reported once, however long it waits (40 days of notifier memory aged, no repeat); once
    it is no longer pending, the notifier forgets it (its memory stays bounded)."""
    ledger = RequestLedger(redis)
    old = WriteRequest(action=WriteAction.TWEET, payload={"text": "waiting for ages"},
                       created_at=utcnow() - timedelta(days=40))  # fmt: skip
    await ledger.record(old, actor="test")
    settings = notifier_settings(**WEBHOOK, waiting_after_min=30)
    last_check = "notifier_last_check_timestamp_seconds"
    async with receiver.serving(), run_notifier(settings) as service:
        await wait_until(lambda: len(events_of(receiver, "waiting")) == 1)
        await _age_notifier_memory(redis, days=40)
        first = sample(service, last_check)
        await wait_until(lambda: sample(service, last_check) > first + 0.3)  # 3+ more checks
        await wait_until(lambda: sample(service, "notifier_outbox_depth") == 0)
        assert len(events_of(receiver, "waiting")) == 1

        await ledger.transition(old.id, ModerationStatus.REJECTED,
                                from_states=[ModerationStatus.PENDING], actor="mod",
                                reason="stale")  # fmt: skip

        async def forgotten() -> bool:
            async for key in redis.scan_iter(match="twitstack:notify:*"):
                if await redis.type(key) == b"zset":
                    members = await redis.zrange(key, 0, -1)
                    if any(old.id.encode() in m for m in members):
                        return False
            return True

        await wait_until_async(forgotten)
    assert len(events_of(receiver, "waiting")) == 1


async def test_outbox_items_that_overflow_or_nest_deeply_are_quarantined(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, receiver: WebhookReceiver
) -> None:
    """JSON numbers past float range (`1e999` → inf, int() overflows) and deeply nested JSON
    (RecursionError) in an outbox item are dead letters, not a crash of the delivery batch."""
    notification = {"id": "n", "event": "failed", "title": "t", "url": BASE,
                    "created_at": 1, "requests": []}  # fmt: skip
    overflow = json.dumps({"channel": "webhook", "notification": {**notification, "more": 0}})
    overflow = overflow.replace('"more": 0', '"more": 1e999')
    attempts = json.dumps({"channel": "webhook", "attempts": 0, "notification": notification})
    attempts = attempts.replace('"attempts": 0', '"attempts": 1e999')
    deep = "[" * 50_000 + "]" * 50_000
    junk = {"overflow|webhook": overflow, "attempts|webhook": attempts, "deep|webhook": deep}
    settings = notifier_settings(**WEBHOOK)
    async with receiver.serving(), run_notifier(settings) as service:
        for name, raw in junk.items():
            await redis.hset(keys.NOTIFY_ITEMS, name, raw)
            await redis.zadd(keys.NOTIFY_OUTBOX, {name: 0})
        good = await needs_review(redis, "delivered beside the junk")
        await wait_until(lambda: len(receiver.delivered()) == 1)
        await wait_until(
            lambda: sample(service, "twitstack_quarantined_total", source="notification",
                           reason="malformed_notification") == 3
        )  # fmt: skip
    assert good in str(receiver.delivered()[0].body)
    dead = {json.loads(raw)["id"] for raw in await redis.lrange(keys.NOTIFY_DEAD, 0, -1)}
    assert dead == set(junk)
    assert await redis.zcard(keys.NOTIFY_OUTBOX) == 0
