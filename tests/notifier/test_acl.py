"""The notifier's work under its own least-privilege Redis user (deploy/redis/users.acl)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from tests.notifier.conftest import HOOK_KEY, needs_review, sample
from tests.notifier.receivers import WebhookReceiver, wait_until, wait_until_async
from tests.ops.acl_server import acl_redis
from twitstack.core.config import Settings
from twitstack.core.secrets import configure_secrets
from twitstack.core.service import ServiceContext
from twitstack.notifier.service import NotifierService
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import WriteAction, WriteRequest, utcnow

pytestmark = pytest.mark.anyio


async def test_every_source_works_as_twitstack_notifier(
    tmp_path: Path, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events, waiting requests, reconnect marks, dead letters and a quarantine, with no
    Redis permission error: the ACL gives the notifier what it uses."""
    receiver = WebhookReceiver(HOOK_KEY)
    monkeypatch.setenv("TEST_HOOK_URL", f"{receiver.url}/hook")
    monkeypatch.setenv("TEST_HOOK_KEY", HOOK_KEY)
    with acl_redis(tmp_path / "acl") as server:
        admin = Redis.from_url(server.url("twitstack-admin"))
        notifier_redis = Redis.from_url(server.url("twitstack-notifier"))
        settings = make_settings(
            redis_url=server.url("twitstack-notifier"),
            writer={"accounts": [{"name": "brand", "user_id": "42", "access_token_secret": "T"}]},
            notifier={
                "moderation_base_url": "https://m.example", "metrics_port": None,
                "check_interval_s": 0.1, "retry_initial_s": 0.05,
                "webhook": {"url_secret": "TEST_HOOK_URL", "signing_key_secret": "TEST_HOOK_KEY"},
            },
        )  # fmt: skip
        configure_secrets(settings)
        try:
            await admin.rpush(keys.DEAD_LETTER, b"old")
            old = WriteRequest(action=WriteAction.TWEET, payload={"text": "old"},
                               created_at=utcnow() - timedelta(hours=1))  # fmt: skip
            await RequestLedger(admin).record(old, actor="test")
            service = NotifierService(
                ServiceContext(settings=settings, redis=notifier_redis, data_dir=tmp_path)
            )
            async with receiver.serving(), anyio.create_task_group() as tg:
                await tg.start(lambda task_status: service.run(task_status=task_status))
                await needs_review(admin, "review me")
                await admin.xadd(keys.EVENTS, {"id": "x", "to": "nonsense"})
                await admin.hset(keys.oauth2_tokens("brand"), "reconnect_needed", "1")

                # The first look at the dead letters sets the baseline; growth after it is news.
                await wait_until_async(
                    lambda: admin.hexists(keys.NOTIFY_STATE, "dead_letter_marks")
                )
                await admin.rpush(keys.DEAD_LETTER, b"new")
                kinds = {"needs_review", "waiting", "reconnect", "dead_letter"}
                await wait_until(lambda: {h.body["event"] for h in receiver.delivered()} == kinds)
                quarantined = {"source": "event", "reason": "malformed_event"}
                await wait_until(
                    lambda: sample(service, "twitstack_quarantined_total", **quarantined) == 1
                )
                service.request_stop()
            assert sample(service, "notifier_redis_errors_total") == 0
        finally:
            await admin.aclose()
            await notifier_redis.aclose()
