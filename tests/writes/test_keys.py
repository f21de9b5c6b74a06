"""Key shapes of the write pipeline: the writer's per-account state, built and parsed back."""

from __future__ import annotations

import pytest

from twitstack.writes import keys
from twitstack.writes.keys import WriterKey, parse_writer_key


def test_account_state_keys_round_trip() -> None:
    """Every per-account key the writer writes (or an older release wrote) parses back to
    what it is about."""
    assert parse_writer_key(keys.rate_limit_budgets("main", "tweets.create")) == WriterKey(
        "budget", "main", "tweets.create"
    )
    assert parse_writer_key(keys.rate_limit_budget("main", "tweets.create", "24h")) == WriterKey(
        "rl", "main", "tweets.create", "24h"
    )
    assert parse_writer_key(keys.rate_limit_in_flight("main", "dm.create")) == WriterKey(
        "in_flight", "main", "dm.create"
    )
    assert parse_writer_key(keys.account_paused("main")) == WriterKey("paused", "main")
    assert parse_writer_key(keys.oauth2_tokens("main")) == WriterKey("token", "main")


@pytest.mark.parametrize(
    "key",
    [
        keys.token_refresh_lock("main"),
        keys.writer_notes("r1"),
        "twitstack:writer:rl:main",
        "twitstack:writer:rl:main:tweets.create:window:x",
        "twitstack:writerx:paused:main",
        keys.request("r1"),
    ],
)
def test_other_keys_are_not_account_state(key: str) -> None:
    """Locks, notes, malformed and foreign keys are not mistaken for account state."""
    assert parse_writer_key(key) is None


def test_key_shapes_are_the_deployed_ones() -> None:
    """Renaming a key would strand the state running writers keep under the old name (the
    old layout's budget keys are still read, to migrate them)."""
    assert keys.rate_limit_budgets("a", "tweets.create") == "twitstack:writer:rl:a:tweets.create"
    assert keys.rate_limit_budget("a", "tweets.create", "window") == (
        "twitstack:writer:rl:a:tweets.create:window"
    )
    assert keys.rate_limit_in_flight("a", "dm.create") == "twitstack:writer:rl:a:dm.create:pending"
    assert keys.account_paused("a") == "twitstack:writer:paused:a"
    assert keys.oauth2_tokens("a") == "twitstack:writer:token:a"
    assert keys.token_refresh_lock("a") == "twitstack:writer:token:a:lock"
    assert keys.writer_notes("r") == "twitstack:writer:notes:r"
