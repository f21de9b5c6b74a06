"""Slack and e-mail channels, against a local HTTP receiver and an aiosmtpd sink."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from tests.conftest import free_port
from tests.notifier.conftest import BASE, RunNotifier, needs_review, sample
from tests.notifier.receivers import DripSmtpServer, WebhookReceiver, smtp_sink, wait_until

pytestmark = pytest.mark.anyio


async def test_slack_message_links_the_request(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An incoming-webhook message whose title links to the request page."""
    receiver = WebhookReceiver("unused")
    monkeypatch.setenv("TEST_SLACK_URL", f"{receiver.url}/services/T0/B0/secret")
    settings = notifier_settings(slack={"webhook_url_secret": "TEST_SLACK_URL"})
    async with receiver.serving(), run_notifier(settings):
        request_id = await needs_review(redis, "a <b>bold</b> & risky tweet")
        await wait_until(lambda: len(receiver.delivered("/services/T0/B0/secret")) == 1)
    [hit] = receiver.delivered("/services/T0/B0/secret")
    text = str(hit.body["text"])
    assert text.startswith(f"*<{BASE}/requests/{request_id}|Request needs review: ")
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; risky" in text  # Slack's control characters escaped


async def test_email_reaches_the_smtp_sink(
    notifier_settings, run_notifier: RunNotifier, redis: Redis
) -> None:
    """A plain-text mail from and to the configured addresses, linking to the request."""
    with smtp_sink() as (port, sink):
        settings = notifier_settings(
            email={"smtp_host": "127.0.0.1", "smtp_port": port, "security": "none",
                   "from_address": "twitstack@example.test", "to": ["mods@example.test"],
                   "events": ["needs_review"]},
        )  # fmt: skip
        async with run_notifier(settings) as service:
            request_id = await needs_review(redis, "mail me")
            await wait_until(lambda: len(sink.messages) == 1)
            await wait_until(
                lambda: sample(service, "notifier_notifications_total", channel="email",
                               event="needs_review", outcome="sent") == 1
            )  # fmt: skip
    sender, recipients, message = sink.messages[0]
    assert (sender, recipients) == ("twitstack@example.test", ["mods@example.test"])
    assert str(message["Subject"]).startswith("[twitstack] Request needs review")
    assert f"{BASE}/requests/{request_id}" in message.get_payload(decode=True).decode()


async def test_email_is_retried_while_the_server_is_down(
    notifier_settings, run_notifier: RunNotifier, redis: Redis
) -> None:
    """No SMTP server yet: the mail is retried, and sent once one listens on the port."""
    port = free_port()
    settings = notifier_settings(
        email={"smtp_host": "127.0.0.1", "smtp_port": port, "security": "none",
               "from_address": "twitstack@example.test", "to": ["mods@example.test"]},
        max_attempts=100,
    )  # fmt: skip
    async with run_notifier(settings) as service:
        await needs_review(redis, "mail me later")
        labels = {"channel": "email", "event": "needs_review"}
        await wait_until(
            lambda: sample(service, "notifier_notifications_total", **labels,
                           outcome="retried") >= 2
        )  # fmt: skip
        with smtp_sink(port) as (_, sink):
            await wait_until(lambda: len(sink.messages) == 1)


async def test_a_dripping_smtp_server_is_hung_up_on_when_the_attempt_times_out(
    notifier_settings, run_notifier: RunNotifier, redis: Redis
) -> None:
    """A server that answers one byte at a time never trips the socket timeout: when the
    attempt's deadline passes, the connection is closed, not left to a thread that lives on."""
    with DripSmtpServer().serving() as server:
        settings = notifier_settings(
            email={"smtp_host": "127.0.0.1", "smtp_port": server.port, "security": "none",
                   "from_address": "twitstack@example.test", "to": ["mods@example.test"]},
            delivery_timeout_s=1, max_attempts=1,
        )  # fmt: skip
        async with run_notifier(settings) as service:
            await needs_review(redis, "mail into the drip")
            labels = {"channel": "email", "event": "needs_review", "outcome": "dead_lettered"}
            await wait_until(lambda: sample(service, "notifier_notifications_total", **labels) == 1)
            await wait_until(lambda: server.closed == 1, timeout_s=10)
