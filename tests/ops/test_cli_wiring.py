"""The ops commands through `twitstack.cli.main`, as operators run them."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from twitstack import cli
from twitstack.writes import keys
from twitstack.writes.wire import decode_write_request


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str) -> list[str]:
    """Settings from the environment, a clean working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TWITSTACK_REDIS_URL", redis_url)
    monkeypatch.setenv("TWITSTACK_DATA_DIR", str(tmp_path / "data"))
    config = tmp_path / "twitstack.toml"
    config.write_text("")
    return ["--config", str(config)]


def test_enqueue_prints_only_the_id_for_scripts(
    wired: list[str], redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`id=$(twitstack enqueue tweet …)` captures exactly the request id."""
    assert cli.main([*wired, "enqueue", "tweet", "hello"]) == 0
    out = capsys.readouterr().out
    client = redis.Redis.from_url(redis_url)
    try:
        raw = client.lindex(keys.WRITE_QUEUE, 0)
    finally:
        client.close()
    assert isinstance(raw, bytes)
    assert out == decode_write_request(raw).id + "\n"


def test_invalid_enqueue_exits_2(wired: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A payload the decoder refuses: exit 2 and one line on stderr."""
    assert cli.main([*wired, "enqueue", "delete", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "twitstack: payload.tweet_id: expected an id string of 1-19 digits, "
        "found string 'nope' (4 characters)"
    ]
