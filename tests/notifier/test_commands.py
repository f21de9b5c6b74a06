"""`twitstack notify`: list and retry the notifier's dead letters against a real Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis as sync_redis

from twitstack.cli import main
from twitstack.core.sections.notifier import NotificationEvent
from twitstack.notifier.models import Delivery, Notification
from twitstack.writes import keys


@pytest.fixture
def cli(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    for key in [k for k in __import__("os").environ if k.startswith("TWITSTACK_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TWITSTACK_REDIS_URL", redis_url)
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "twitstack.toml"
    config.write_text("")
    return ["--config", str(config)]


def _dead(client: sync_redis.Redis, n: int) -> str:
    notification = Notification(
        id=f"failed:{n}-0", event=NotificationEvent.FAILED, title="t", url="https://m/q",
        created_at=1.0,
    )  # fmt: skip
    delivery = Delivery(notification, "webhook", attempts=8, last_error="http_500")
    entry = {"id": delivery.id, "channel": "webhook", "event": "failed", "attempts": 8,
             "error": "http_500", "dead_at": 1.0, "delivery": delivery.to_json()}  # fmt: skip
    client.lpush(keys.NOTIFY_DEAD, json.dumps(entry, sort_keys=True))
    return delivery.id


def test_list_then_retry_one_puts_it_back_in_the_outbox(
    cli: list[str], redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dead letter is listed with its error, and retry moves it to the outbox, fresh."""
    client = sync_redis.Redis.from_url(redis_url)
    try:
        first, second = _dead(client, 1), _dead(client, 2)
        assert main(["notify", "dead", "list", *cli]) == 0
        out = capsys.readouterr().out
        assert "2 dead notifications" in out
        assert f"{first}  1970-01-01T00:00:01Z  webhook  failed  after 8 attempts: http_500" in out
        assert main(["notify", "dead", "retry", first, *cli]) == 0
        assert capsys.readouterr().out == f"retrying {first}\n"
        assert client.llen(keys.NOTIFY_DEAD) == 1
        assert client.zscore(keys.NOTIFY_OUTBOX, first) is not None
        stored = Delivery.from_json(first, client.hget(keys.NOTIFY_ITEMS, first) or b"")
        assert (stored.attempts, stored.last_error) == (0, "")
        assert main(["notify", "dead", "retry", "nope", *cli]) == 1
        assert main(["notify", "dead", "retry", "--all", *cli]) == 0
        assert capsys.readouterr().out.endswith(f"retrying {second}\n")
        assert main(["notify", "status", *cli]) == 0
        assert "outbox: 2 waiting or retrying" in capsys.readouterr().out
    finally:
        client.close()
