"""`twitstack writer status|resume` list the TOML's accounts and the connected ones alike.

Real processes: `x-accounts connect` signs an account in at the fake X, then `writer status`
and `writer resume` run as commands against the same real Redis.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.test_x_accounts_cli import REPO, connect_by_paste, env
from tests.writer.test_x_accounts_cli import config_file as connect_config
from twitstack.writer.ratelimit import AccountPauses
from twitstack.writes import keys
from twitstack.writes.spend import Periods

pytestmark = pytest.mark.anyio


def config_file(tmp_path: Path, redis_url: str, sandbox: RunningSandbox) -> Path:
    """One `[[writer.accounts]]` account ("main") and the OAuth client to connect others."""
    path = connect_config(tmp_path, redis_url, sandbox)
    with path.open("a") as config:
        config.write(
            "[[writer.accounts]]\n"
            'name = "main"\nuser_id = "2000"\naccess_token_secret = "MAIN_TOKEN"\n'
        )
    return path


async def writer_cli(config: Path, *args: str) -> tuple[int, str, str]:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "twitstack", "writer", *args, "--config", str(config)],
            env=env(), check=False, cwd=REPO,
        )  # fmt: skip
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def block(out: str, account: str) -> list[str]:
    """The line `account <name> ...` and the indented lines under it."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"account {account} ("))
    under = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        under.append(line)
    return [lines[start], *under]


async def test_status_lists_configured_and_connected_accounts(
    tmp_path: Path, redis_url: str, sandbox: RunningSandbox, redis: Redis
) -> None:
    """Both kinds, each marked, each with its spend and budget lines; a connected account's
    reconnect mark and pause show; `writer resume` resumes a connected account."""
    config = config_file(tmp_path, redis_url, sandbox)
    code, out, err = await connect_by_paste(config, "--scope", "posting")
    assert code == 0, err
    assert "as brand" in out

    day = Periods.at(time.time()).day
    await redis.hset(keys.spend_rollup(day), mapping={"brand|*": 250_000, "*|*": 250_000})
    budget = keys.rate_limit_budgets("brand", "tweets.create")
    reset = time.time() + 600
    await redis.hset(
        budget, mapping={"window.limit": 100, "window.remaining": 42, "window.reset": reset}
    )
    await redis.hset(
        keys.oauth2_tokens("brand"),
        mapping={"reconnect_needed": "1", "reconnect_reason": "refresh token revoked"},
    )
    await AccountPauses(redis, clock=time.time).pause("brand", "reconnect_needed")

    code, out, err = await writer_cli(config, "status")
    assert code == 0, err
    main = block(out, "main")
    assert main[0] == "account main (configured, oauth2, user 2000): active"
    assert main[1].startswith("  spend today $0.000 (")
    brand = block(out, "brand")
    assert brand[0] == (
        "account brand (connected @twitstack_demo, oauth2-pkce, user 1000): "
        "PAUSED (reconnect_needed), RECONNECT NEEDED (refresh token revoked)"
    )
    assert brand[1].startswith("  spend today $0.250 (")
    assert brand[2].startswith("  tweets.create: 42/100 left, resets in ")

    code, out, err = await writer_cli(config, "resume", "brand")
    assert (code, out.strip()) == (0, "account brand: resumed"), err
    assert await redis.exists(keys.account_paused("brand")) == 0
    code, out, err = await writer_cli(config, "resume", "nobody")
    assert code == 2
    assert "no account named 'nobody' is configured or connected" in err
