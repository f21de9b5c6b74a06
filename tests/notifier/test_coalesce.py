"""Notification storms: at most one message per channel and event kind per window, the count
exact, the first requests linked, and a link to the filtered list."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from tests.notifier.conftest import BASE, HOOK_KEY, RunNotifier, needs_review
from tests.notifier.receivers import WebhookReceiver, wait_until
from twitstack.core.sections.notifier import NotificationEvent
from twitstack.notifier.coalesce import Coalescer
from twitstack.notifier.compose import MAX_REQUESTS
from twitstack.notifier.models import Delivery, Notification, RequestRef
from twitstack.notifier.outbox import Guard, NotificationOutbox
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus

pytestmark = pytest.mark.anyio

FAILURES = 2000


def total(receiver: WebhookReceiver) -> int:
    return sum(len(h.body["requests"]) + h.body["more"] for h in receiver.delivered())  # type: ignore[arg-type, misc]


async def test_two_thousand_failures_are_a_few_messages_with_the_exact_count(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 failures, read in 20 batches of 100: without coalescing 20 messages; with a 2 s
    window at most one per window that passed (plus the first), adding up to exactly 2,000."""
    receiver = WebhookReceiver(HOOK_KEY)
    monkeypatch.setenv("TEST_HOOK_URL", f"{receiver.url}/hook")
    window_s = 2.0
    settings = notifier_settings(
        webhook={"url_secret": "TEST_HOOK_URL", "signing_key_secret": "TEST_HOOK_KEY",
                 "events": ["failed"]},
        coalesce_window_s=window_s,
    )  # fmt: skip
    ledger = RequestLedger(redis)
    ids = set()
    for n in range(FAILURES):
        request_id = await needs_review(redis, f"storm {n}")
        await ledger.transition(
            request_id, ModerationStatus.FAILED, from_states=[ModerationStatus.NEEDS_REVIEW],
            actor="test", reason="x refused",
        )  # fmt: skip
        ids.add(request_id)
    await redis.hset(keys.NOTIFY_STATE, "cursor", "0-0")  # the notifier reads them all
    started = time.monotonic()
    async with receiver.serving(), run_notifier(settings):
        await wait_until(lambda: total(receiver) >= FAILURES, timeout_s=60)
    elapsed = time.monotonic() - started
    bodies = [hit.body for hit in receiver.delivered()]
    assert total(receiver) == FAILURES
    # One message per window at most: the first at once, then one per window elapsed.
    assert len(bodies) <= 1 + int(elapsed / window_s) + 1
    assert len(bodies) < FAILURES // 100
    listed = [ref["id"] for body in bodies for ref in body["requests"]]  # type: ignore[union-attr, index]
    assert len(listed) == len(set(listed))
    assert set(listed) <= ids
    for body in bodies:
        assert body["event"] == "failed"
        assert len(body["requests"]) <= MAX_REQUESTS  # type: ignore[arg-type]
        if body["more"]:
            assert body["url"] == f"{BASE}/history?tab=failed"
            count = len(body["requests"]) + body["more"]  # type: ignore[arg-type, operator]
            assert body["title"] == f"{count} requests failed"


def batch(n: int, size: int) -> Delivery:
    refs = tuple(RequestRef(f"r{n}-{i}", f"request {n}-{i}", f"{BASE}/requests/r{n}-{i}")
                 for i in range(size))  # fmt: skip
    notification = Notification(
        id=f"failed:{n}-0", event=NotificationEvent.FAILED, title=f"{size} requests failed",
        url=f"{BASE}/history?tab=failed", created_at=1.0, requests=refs[:MAX_REQUESTS],
        more=max(0, size - MAX_REQUESTS),
    )  # fmt: skip
    return Delivery(notification, "webhook")


async def test_batches_merge_until_claimed_and_the_next_waits_a_window(redis: Redis) -> None:
    """Twenty batches before anything is claimed are one delivery; once it is claimed, a new
    batch opens the next one, due a window after the claim (not merged into the one sent)."""
    outbox = NotificationOutbox(redis)
    coalescer = Coalescer(redis, base=BASE, window_s=3600)
    now = time.time()
    cursor = ""  # no cursor yet
    for n in range(20):
        guard = Guard("cursor", cursor, f"{n + 1}-0")
        assert await coalescer.schedule([batch(n, 100)], guard=guard, now=now) == (n == 0)
        cursor = f"{n + 1}-0"
    [claimed] = await outbox.claim(lease_s=60, limit=10)
    sent = Delivery.from_json(claimed.id, claimed.raw).notification
    assert len(sent.requests) + sent.more == 2000
    assert len(sent.requests) == MAX_REQUESTS
    assert sent.title == "2000 requests failed"
    await coalescer.schedule([batch(99, 7)], guard=Guard("cursor", cursor, "99-0"), now=now)
    assert await outbox.claim(lease_s=60, limit=10) == []  # the next is a window away
    due = await redis.zscore(keys.NOTIFY_OUTBOX, batch(99, 7).id)
    assert due is not None
    assert due >= (now + 3600) * 1000 - 1000
    assert await redis.zcard(keys.NOTIFY_OUTBOX) == 2  # the claimed one (leased) and the next
    stored = await redis.hget(keys.NOTIFY_ITEMS, claimed.key)
    assert stored is not None
    again = Delivery.from_json(claimed.id, stored).notification
    assert len(again.requests) + again.more == 2000  # nothing merged into the one claimed
