"""`twitstack writer status|resume` against a real Redis."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable

import anyio
import pytest
import redis as redis_sync
from redis.asyncio import Redis

from twitstack.core.config import Settings
from twitstack.writer.commands import add_commands
from twitstack.writer.ratelimit import AccountPauses

ACCOUNT = {"name": "main", "user_id": "1000", "access_token_secret": "X"}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


def test_resume_clears_a_pause_and_status_shows_it(
    make_settings: Callable[..., Settings], redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A paused account is listed as PAUSED, resumed by the command, then listed active."""
    settings = make_settings(redis_url=redis_url, writer={"accounts": [ACCOUNT]})

    async def pause() -> None:
        client = Redis.from_url(redis_url)
        await AccountPauses(client, clock=lambda: 0.0).pause("main", "usage_capped")
        await client.aclose()

    anyio.run(pause)
    status = parse("writer", "status")
    assert status.handler(status, settings) == 0
    assert (
        "account main (configured, oauth2, user 1000): PAUSED (usage_capped)"
        in capsys.readouterr().out
    )
    resume = parse("writer", "resume", "main")
    assert resume.handler(resume, settings) == 0
    assert "account main: resumed" in capsys.readouterr().out
    with redis_sync.Redis.from_url(redis_url) as check:
        assert check.exists("twitstack:writer:paused:main") == 0
    assert status.handler(status, settings) == 0
    assert "account main (configured, oauth2, user 1000): active" in capsys.readouterr().out


def test_resume_of_unknown_account_is_a_usage_error(
    make_settings: Callable[..., Settings], redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Naming an account that is not configured exits 2 with one line on stderr."""
    settings = make_settings(redis_url=redis_url)
    resume = parse("writer", "resume", "ghost")
    assert resume.handler(resume, settings) == 2
    assert (
        capsys.readouterr().err.strip()
        == "writer resume: no account named 'ghost' is configured or connected"
    )


@pytest.mark.parametrize("argv", [("writer", "status"), ("writer", "resume", "main")])
def test_redis_refusing_the_command_never_prints_the_password(
    make_settings: Callable[..., Settings],
    redis_url: str,
    argv: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A Redis that answers PING but refuses the command: the error hides the URL's password."""
    user = f"pingonly{uuid.uuid4().hex[:8]}"
    with redis_sync.Redis.from_url(redis_url) as admin:
        admin.execute_command("ACL", "SETUSER", user, "on", ">s3cret-pass", "+ping", "~*")
        try:
            url = redis_url.replace("redis://", f"redis://{user}:s3cret-pass@", 1)
            settings = make_settings(redis_url=url, writer={"accounts": [ACCOUNT]})
            args = parse(*argv)
            assert args.handler(args, settings) == 1
        finally:
            admin.execute_command("ACL", "DELUSER", user)
    err = capsys.readouterr().err
    # Redis answers but refuses this user INFO: said as such, not as an outage.
    assert f"user {user} may not run INFO" in err
    assert "twitstack redis-acl" in err
    assert "s3cret-pass" not in err
    assert f"{user}:***@" in err
