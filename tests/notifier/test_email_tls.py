"""E-mail over implicit TLS and STARTTLS, against aiosmtpd with a certificate from a CA made
for the test: sent when `ca_file` names that CA, refused (never sent in clear) when it does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.notifier.conftest import RunNotifier, needs_review, sample
from tests.notifier.receivers import smtp_sink, wait_until
from tests.notifier.tls import make_ca
from twitstack.writes import keys

pytestmark = pytest.mark.anyio

EMAIL: dict[str, Any] = {
    "smtp_host": "127.0.0.1", "from_address": "twitstack@example.test",
    "to": ["mods@example.test"], "events": ["needs_review"],
}  # fmt: skip
SENT = {"channel": "email", "event": "needs_review", "outcome": "sent"}


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_email_over_tls_verifies_the_server_against_ca_file(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, tmp_path: Path, security: str
) -> None:
    ca = make_ca(tmp_path / "ca")
    server = ca.server_context()
    sink_tls = {"tls": server} if security == "tls" else {"starttls": server}
    with smtp_sink(**sink_tls) as (port, sink):
        settings = notifier_settings(
            email={**EMAIL, "smtp_port": port, "security": security, "ca_file": str(ca.ca_file)}
        )
        async with run_notifier(settings) as service:
            request_id = await needs_review(redis, f"over {security}")
            await wait_until(lambda: len(sink.messages) == 1)
            await wait_until(lambda: sample(service, "notifier_notifications_total", **SENT) == 1)
    sender, recipients, message = sink.messages[0]
    assert (sender, recipients) == ("twitstack@example.test", ["mods@example.test"])
    assert request_id in message.get_payload(decode=True).decode()


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_email_to_a_server_the_ca_file_does_not_vouch_for_is_not_sent(
    notifier_settings, run_notifier: RunNotifier, redis: Redis, tmp_path: Path, security: str
) -> None:
    """The server's certificate comes from another CA: every attempt fails, nothing is sent."""
    trusted, other = make_ca(tmp_path / "trusted"), make_ca(tmp_path / "other")
    server = other.server_context()
    sink_tls = {"tls": server} if security == "tls" else {"starttls": server}
    with smtp_sink(**sink_tls) as (port, sink):
        settings = notifier_settings(
            email={**EMAIL, "smtp_port": port, "security": security,
                   "ca_file": str(trusted.ca_file)},
            max_attempts=2,
        )  # fmt: skip
        async with run_notifier(settings) as service:
            await needs_review(redis, "not to an impostor")
            dead = {**SENT, "outcome": "dead_lettered"}
            await wait_until(lambda: sample(service, "notifier_notifications_total", **dead) == 1)
    assert sink.messages == []
    [letter] = [json.loads(raw) for raw in await redis.lrange(keys.NOTIFY_DEAD, 0, -1)]
    assert "SSLCertVerificationError" in letter["error"]
    assert sample(service, "notifier_notifications_total", **SENT) == 0
