"""The scraper's CLI subcommands, driven through argparse like `twitstack` does."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import start_blocking_portal

from tests.scraper.test_store import tweet
from twitstack.core.http_server import serve_asgi
from twitstack.sandbox.graphql import GraphQLFake, SynthCorpus, create_app
from twitstack.scraper.commands import add_commands
from twitstack.scraper.db import open_database
from twitstack.scraper.store import TweetStore
from twitstack.scraper.twscrape_adapter import TwscrapeAccounts

_CLI_TIMEOUT_S = 60


def _invoke(settings: Any, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, Any], int] = args.handler
    return handler(args, settings)


def test_accounts_add_list_remove(make_settings: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Added accounts are listed as active with no error; removed ones are gone."""
    settings = make_settings()
    assert _invoke(settings, "accounts", "add", "alice", "auth_token=a; ct0=b") == 0
    assert _invoke(settings, "accounts", "list") == 0
    listing = capsys.readouterr().out
    assert "alice" in listing
    assert "active" in listing
    assert _invoke(settings, "accounts", "remove", "alice") == 0
    capsys.readouterr()
    _invoke(settings, "accounts", "list")
    assert "alice" not in capsys.readouterr().out


def test_import_cookies_from_the_seed_cookie_file(
    make_settings: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cookie_path JSON file imports every account it lists."""
    cookie_file = tmp_path / "cookies.json"
    accounts = [
        {"username": f"u{i}", "cookies": {"auth_token": f"t{i}", "ct0": "c"}} for i in (1, 2)
    ]
    cookie_file.write_text(json.dumps({"accounts": accounts}))
    settings = make_settings(cookie_path=cookie_file)
    assert _invoke(settings, "accounts", "import-cookies") == 0
    assert "2 account(s)" in capsys.readouterr().out


def test_tweets_export_writes_jsonl(make_settings: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """`tweets export --format jsonl` prints one JSON object per stored tweet, ids as strings."""
    settings = make_settings()
    settings.state_dir.mkdir(parents=True, exist_ok=True)

    async def seed() -> None:
        async with open_database(settings.state_dir / "scraper.db") as conn:
            await TweetStore(conn).upsert([tweet(1), tweet(2)], job="j", run_id=1, now=1.0)

    anyio.run(seed)
    assert _invoke(settings, "tweets", "export", "--format", "jsonl") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["1", "2"]


@dataclass
class _LoopbackX:
    fake: GraphQLFake
    url: str
    call: Callable[..., Any]  # runs a coroutine function on the fake's event loop


@asynccontextmanager
async def _serve(fake: GraphQLFake) -> AsyncIterator[str]:
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve_asgi(
                create_app(fake), host="127.0.0.1", port=0, name="graphql-fake",
                task_status=task_status,
            )
        )  # fmt: skip
        yield f"http://127.0.0.1:{port}"
        tg.cancel_scope.cancel()


@pytest.fixture
def loopback_x() -> Iterator[_LoopbackX]:
    """The GraphQL fake on its own event loop in a thread, so sync CLI handlers can call it."""
    fake = GraphQLFake(SynthCorpus.generate(seed=3, users=6, tweets=20))
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(_serve(fake)) as url,
    ):
        yield _LoopbackX(fake, url, portal.call)


def _twitstack(tmp_path: Path, config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`python -m twitstack ARGV --config CONFIG` in a clean environment (no TWITSTACK_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWITSTACK_")}
    return subprocess.run(
        [sys.executable, "-m", "twitstack", *argv, "--config", str(config)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=_CLI_TIMEOUT_S,
    )  # fmt: skip


def _config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "twitstack.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'proxy_file = "{tmp_path / "no-proxies.txt"}"\n'
        "[scraper]\n"
        f'graphql_url_override = "{url}"\n'
        'probe_screen_name = "team"\n'
    )
    return config


def test_accounts_check_from_the_cli_probes_and_acts(
    loopback_x: _LoopbackX, tmp_path: Path
) -> None:
    """`twitstack accounts check` probes each account once against the fake: a healthy one
    stays active, a suspended one (403 code 64) is quarantined, one X no longer authenticates
    (401 code 32) is inactive; the exit code says not all are healthy."""
    accounts = TwscrapeAccounts((tmp_path / "data" / "scraper-accounts.db").absolute())
    (tmp_path / "data").mkdir()
    for n in (1, 2, 3):
        loopback_x.call(accounts.upsert_cookies, f"acc{n}", f"auth_token=t{n}; ct0=c{n}")
    loopback_x.fake.inject("suspended", account="t2", op="UserByScreenName", times=5)
    loopback_x.fake.inject("auth_failed", account="t3", op="UserByScreenName", times=5)

    done = _twitstack(tmp_path, _config(tmp_path, loopback_x.url), "accounts", "check")

    assert done.returncode == 1, done.stderr
    states = dict(line.split() for line in done.stdout.splitlines())
    assert states == {"acc1": "active", "acc2": "quarantined", "acc3": "inactive"}
    probes = loopback_x.fake.seen("UserByScreenName")
    assert sorted(r.account or "" for r in probes) == ["t1", "t2", "t3"]
    assert all(r.variables["screen_name"] == "team" for r in probes)
    acc2 = loopback_x.call(accounts.get, "acc2")
    assert acc2 is not None
    assert (acc2.active, acc2.quarantined) == (False, True)


def test_accounts_check_of_healthy_named_accounts_exits_0(
    loopback_x: _LoopbackX, tmp_path: Path
) -> None:
    """Only the named account is probed; all healthy means exit 0."""
    accounts = TwscrapeAccounts((tmp_path / "data" / "scraper-accounts.db").absolute())
    (tmp_path / "data").mkdir()
    for n in (1, 2):
        loopback_x.call(accounts.upsert_cookies, f"acc{n}", f"auth_token=t{n}; ct0=c{n}")

    done = _twitstack(tmp_path, _config(tmp_path, loopback_x.url), "accounts", "check", "acc2")

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["acc2", "active"]
    assert [r.account for r in loopback_x.fake.seen("UserByScreenName")] == ["t2"]


def test_importing_the_command_module_loads_no_scraper_dependency() -> None:
    """`twitstack run --only writer` builds every parser: the scraper's must not import
    twscrape, aioboto3 or aiosqlite to do so."""
    probe = (
        "import sys, twitstack.scraper.commands; "
        "print(sorted(m for m in ('twscrape', 'aioboto3', 'aiosqlite', 'jinja2') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=_CLI_TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
