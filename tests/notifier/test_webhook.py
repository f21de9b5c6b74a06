"""The signed webhook channel against a local receiver: signatures, retries, outages."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from redis.asyncio import Redis

from tests.notifier.conftest import BASE, HOOK_KEY, RunNotifier, needs_review, sample
from tests.notifier.receivers import WebhookReceiver, wait_until
from twitstack.core.sections.notifier import NotificationEvent
from twitstack.notifier.channels import DeliveryError, WebhookChannel
from twitstack.notifier.models import Notification
from twitstack.notifier.outbox import NotificationOutbox
from twitstack.notifier.signing import signature_header, verify
from twitstack.writes import keys

pytestmark = pytest.mark.anyio


def webhook(receiver: WebhookReceiver, **extra: object) -> dict[str, object]:
    return {"webhook": {"url_secret": "TEST_HOOK_URL", "signing_key_secret": "TEST_HOOK_KEY",
                        **extra}}  # fmt: skip


def hook_requests(receiver: WebhookReceiver) -> set[str]:
    return {ref["id"] for hit in receiver.delivered() for ref in hit.body["requests"]}


async def test_delivery_is_signed_and_links_to_the_request(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receiver verifies the HMAC; the body links straight to the request."""
    receiver = WebhookReceiver(HOOK_KEY)
    monkeypatch.setenv("TEST_HOOK_URL", f"{receiver.url}/hook")
    settings = notifier_settings(**webhook(receiver))
    async with receiver.serving(), run_notifier(settings) as service:
        request_id = await needs_review(redis, "hello from the test")
        await wait_until(lambda: len(receiver.delivered()) == 1)
        await wait_until(
            lambda: sample(service, "notifier_notifications_total", channel="webhook",
                           event="needs_review", outcome="sent") == 1
        )  # fmt: skip
    hit = receiver.delivered()[0]
    assert receiver.refused == []
    assert hit.body["event"] == "needs_review"
    assert hit.body["url"] == f"{BASE}/requests/{request_id}"
    assert hit.body["requests"][0]["id"] == request_id
    assert "hello from the test" in hit.body["requests"][0]["summary"]
    assert hit.headers["x-twitstack-delivery"] == hit.body["delivery_id"]


def test_signature_rejects_stale_timestamps_and_tampered_bodies() -> None:
    """Replay safety: a delivery older than the tolerance, or altered, does not verify."""
    body = json.dumps({"a": 1}).encode()
    now = time.time()
    fresh = signature_header(HOOK_KEY, int(now), body)
    assert verify(HOOK_KEY, fresh, body, now=now)
    assert not verify(HOOK_KEY, fresh, body + b" ", now=now)
    assert not verify("another key", fresh, body, now=now)
    stale = signature_header(HOOK_KEY, int(now) - 301, body)
    assert not verify(HOOK_KEY, stale, body, now=now)
    assert not verify(HOOK_KEY, "t=abc,v1=00", body, now=now)


async def test_retries_after_500s_then_delivers_once(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two 500s, then 200: three signed attempts, counted as retried twice and sent once."""
    receiver = WebhookReceiver(HOOK_KEY, statuses=[500, 503])
    monkeypatch.setenv("TEST_HOOK_URL", f"{receiver.url}/hook")
    settings = notifier_settings(**webhook(receiver))
    async with receiver.serving(), run_notifier(settings) as service:
        await needs_review(redis, "retry me")
        await wait_until(lambda: len(receiver.delivered()) == 1)
        labels = {"channel": "webhook", "event": "needs_review"}
        await wait_until(
            lambda: sample(service, "notifier_notifications_total", **labels, outcome="sent") == 1
        )
        retried = sample(service, "notifier_notifications_total", **labels, outcome="retried")
    assert [hit.status for hit in receiver.hits] == [500, 503, 200]
    assert receiver.refused == []  # every attempt signed afresh and verified
    assert retried == 2
    assert await redis.zcard(keys.NOTIFY_OUTBOX) == 0


async def test_nothing_lost_while_the_receiver_is_down(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notifications made while the receiver is down all arrive once it is back."""
    receiver = WebhookReceiver(HOOK_KEY)
    monkeypatch.setenv("TEST_HOOK_URL", f"{receiver.url}/hook")
    settings = notifier_settings(**webhook(receiver), max_attempts=100)
    async with run_notifier(settings) as service:
        ids = {await needs_review(redis, f"while down {n}") for n in range(3)}
        labels = {"channel": "webhook", "event": "needs_review", "outcome": "retried"}
        await wait_until(lambda: sample(service, "notifier_notifications_total", **labels) >= 3)
        assert receiver.hits == []
        async with receiver.serving():
            await wait_until(lambda: hook_requests(receiver) == ids)
    dead = {**labels, "outcome": "dead_lettered"}
    assert sample(service, "notifier_notifications_total", **dead) == 0


async def test_dead_letter_after_max_attempts_then_revived(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After max_attempts failures the delivery is a dead letter; reviving it delivers it."""
    receiver = WebhookReceiver(HOOK_KEY, statuses=[500] * 3)
    monkeypatch.setenv("TEST_HOOK_URL", f"{receiver.url}/hook")
    settings = notifier_settings(**webhook(receiver), max_attempts=3)
    async with receiver.serving(), run_notifier(settings) as service:
        await needs_review(redis, "doomed")
        labels = {"channel": "webhook", "event": "needs_review"}
        await wait_until(
            lambda: sample(service, "notifier_notifications_total", **labels,
                           outcome="dead_lettered") == 1
        )  # fmt: skip
        await wait_until(lambda: sample(service, "notifier_dead_letter_depth") == 1)
        outbox = NotificationOutbox(redis)
        [letter] = await outbox.dead_letters()
        assert (letter.channel, letter.attempts, letter.error) == ("webhook", 3, "http_500")
        assert receiver.delivered() == []
        assert await outbox.revive(letter)
        await wait_until(lambda: len(receiver.delivered()) == 1)
    assert await redis.llen(keys.NOTIFY_DEAD) == 0


async def test_client_errors_dead_letter_at_once(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 (wrong key at the receiver) will not get better by retrying: dead letter at once."""
    receiver = WebhookReceiver("not the key the notifier signs with")
    monkeypatch.setenv("TEST_HOOK_URL", f"{receiver.url}/hook")
    settings = notifier_settings(**webhook(receiver))
    async with receiver.serving(), run_notifier(settings) as service:
        await needs_review(redis, "wrong key")
        await wait_until(lambda: sample(service, "notifier_dead_letter_depth") == 1)
    with_dead = await redis.lrange(keys.NOTIFY_DEAD, 0, -1)
    assert len(receiver.refused) == 1
    assert len(with_dead) == 1
    assert json.loads(with_dead[0])["error"] == "http_401"


def test_the_documented_verify_snippet_agrees_with_the_signer() -> None:
    """docs/notifications.md's receiver snippet accepts what the notifier signs."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "notifications.md").read_text()
    [snippet] = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "def verify" in b]
    namespace: dict[str, object] = {}
    exec(compile(snippet, "notifications.md", "exec"), namespace)
    documented = namespace["verify"]
    body = b'{"event":"failed"}'
    now = time.time()
    header = signature_header(HOOK_KEY, int(now), body)
    assert documented(HOOK_KEY, header, body, now)  # type: ignore[operator]
    assert not documented(HOOK_KEY, header, body + b"x", now)  # type: ignore[operator]
    assert not documented(HOOK_KEY, header, body, now + 301)  # type: ignore[operator]


async def test_a_receiver_answering_with_an_endless_body_is_not_read(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 200 with a 1 GiB body: the status is the answer; the notifier neither buffers the body
    in memory nor waits for it (which timed out and sent the delivery again and again)."""
    receiver = WebhookReceiver(HOOK_KEY, flood=True)
    monkeypatch.setenv("TEST_HOOK_URL", f"{receiver.url}/hook")
    settings = notifier_settings(**webhook(receiver), max_attempts=2)
    labels = {"channel": "webhook", "event": "needs_review"}
    async with receiver.serving(), run_notifier(settings) as service:
        await needs_review(redis, "flooded")
        outcomes = ("sent", "dead_lettered")

        def settled() -> float:
            return sum(
                sample(service, "notifier_notifications_total", **labels, outcome=outcome)
                for outcome in outcomes
            )

        await wait_until(lambda: settled() == 1)
        retried = sample(service, "notifier_notifications_total", **labels, outcome="retried")
        sent = sample(service, "notifier_notifications_total", **labels, outcome="sent")
    assert (sent, retried) == (1, 0)
    assert len(receiver.hits) == 1


@pytest.mark.parametrize("url", ["https://[::1/hook", "ftp://example.test/hook", "https:///hook"])
async def test_a_malformed_url_is_not_retried(url: str) -> None:
    """A URL that became malformed after the start (httpx.InvalidURL and kin) will never
    work: the channel says so with a reason that does not quote it, and no retry is asked."""
    async with httpx.AsyncClient() as http:
        channel = WebhookChannel(http, url, HOOK_KEY)
        notification = Notification(
            id="n1", event=NotificationEvent.FAILED, title="t", url=BASE, created_at=time.time()
        )
        with pytest.raises(DeliveryError) as caught:
            await channel.send(notification, "d1")
    assert caught.value.retryable is False
    assert caught.value.reason.startswith("invalid_url")
    assert "hook" not in caught.value.reason
