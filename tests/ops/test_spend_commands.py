"""`twitstack spend`, `spend cap` and the spend lines of `writer status`, on a real Redis."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import pytest
import redis as redis_sync

from twitstack.core.config import Settings
from twitstack.ops.spend_commands import add_commands
from twitstack.writer import commands as writer_commands
from twitstack.writes import keys
from twitstack.writes.spend import Periods

ACCOUNT = {"name": "main", "user_id": "1000", "access_token_secret": "X"}
CAPS = {"total": {"monthly_usd": 50.0}, "accounts": {"main": {"daily_usd": 1.0}}}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_commands(sub)
    writer_commands.add_commands(sub)
    return parser.parse_args(list(argv))


def run(settings: Settings, *argv: str) -> int:
    args = parse(*argv)
    code: int = args.handler(args, settings)
    return code


@pytest.fixture
def settings(make_settings: Callable[..., Settings], redis_url: str) -> Settings:
    return make_settings(redis_url=redis_url, writer={"accounts": [ACCOUNT]}, spend=CAPS)


def seed(redis_url: str) -> Periods:
    now = Periods.at(time.time())
    with redis_sync.Redis.from_url(redis_url) as client:
        for period in (now.day, now.month):
            client.hset(
                keys.spend_rollup(period),
                mapping={"main|post": 600_000, "main|timeline_read": 15_000, "main|*": 615_000,
                         "*|*": 615_000},
            )  # fmt: skip
    return now


def test_spend_prints_the_month_per_account_and_action_with_caps(
    settings: Settings, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = seed(redis_url)
    assert run(settings, "spend") == 0
    out = capsys.readouterr().out
    assert f"X spend in {now.month} (UTC; prices as of 2026-08-13): total $0.615" in out
    assert "budget all: day $0.615, no cap; month $0.615 of $50.000, $49.385 left" in out
    assert "account main: $0.615" in out
    assert "budget main: day $0.615 of $1.000, $0.385 left; month $0.615, no cap" in out
    assert "  post: $0.600" in out
    assert "  timeline_read: $0.015" in out
    assert run(settings, "spend", "--month", "2020-01", "--account", "main") == 0
    assert "total $0.000" in capsys.readouterr().out
    assert run(settings, "spend", "--month", "2026-13") == 2
    assert "--month must look like 2026-12" in capsys.readouterr().err


def test_spend_shows_what_the_ledger_cannot_read_as_unreadable_not_zero(
    settings: Settings, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A day rollup of another type and a month total that is text: the writer holds those
    capped budgets, so `spend` and `writer status` must not print $0.000 for them."""
    now = seed(redis_url)
    with redis_sync.Redis.from_url(redis_url) as client:
        client.delete(keys.spend_rollup(now.day))
        client.set(keys.spend_rollup(now.day), "not a hash")
        client.hset(keys.spend_rollup(now.month), "main|*", "lots")
    assert run(settings, "spend") == 0
    out = capsys.readouterr().out
    assert "total $0.615" in out
    assert "budget all: day UNREADABLE, no cap; month $0.615 of $50.000, $49.385 left" in out
    assert "account main: UNREADABLE" in out
    assert "budget main: day UNREADABLE of $1.000, held; month UNREADABLE, no cap" in out
    assert f"the {now.day} ledger {keys.spend_rollup(now.day)} is not a hash" in out
    assert run(settings, "writer", "status") == 0
    out = capsys.readouterr().out
    assert "spend today UNREADABLE (cap $1.00), this month UNREADABLE (no cap)" in out


def test_spend_cap_raises_audited_and_refuses_lowering_or_nonsense(
    settings: Settings, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = seed(redis_url)
    assert run(settings, "spend", "cap", "day", "0.5", "--for", "main") == 2
    assert "below the cap in force ($1.00)" in capsys.readouterr().err
    assert run(settings, "spend", "cap", "day", "nan", "--for", "main") == 2
    assert run(settings, "spend", "cap", "day", "5", "--for", "ghost") == 2
    assert run(settings, "spend", "cap", "month", "5", "--for", "main") == 2
    assert "main has no month cap to raise" in capsys.readouterr().err
    assert run(settings, "spend", "cap", "day", "2", "--for", "main") == 0
    assert "main: day cap is now $2.000 (audited as cli:" in capsys.readouterr().out
    assert run(settings, "spend", "cap", "month", "80", "--total") == 0
    with redis_sync.Redis.from_url(redis_url) as client:
        assert client.hget(keys.spend_rollup(now.day), "main|*|cap") == b"2000000"
        assert client.hget(keys.spend_rollup(now.month), "*|*|cap") == b"80000000"
        assert client.xlen(keys.SPEND_CAPS_AUDIT) == 2
        client.hset(
            keys.account_paused("main"),
            mapping={"reason": "budget", "until": repr(now.day_end), "budget": "account|day"},
        )
    assert run(settings, "writer", "status") == 0
    out = capsys.readouterr().out
    assert "spend all accounts: today $0.615 (no cap), this month $0.615 (cap $80.00)" in out
    assert "account main (configured, oauth2, user 1000): PAUSED (budget) until " in out
    assert "  spend today $0.615 (cap $2.00), this month $0.615 (no cap)" in out
