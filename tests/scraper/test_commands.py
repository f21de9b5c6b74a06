"""The scraper's CLI subcommands, driven through argparse like `twitstack` does."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.scraper.test_store import tweet
from twitstack.scraper.commands import add_commands
from twitstack.scraper.db import open_database
from twitstack.scraper.store import TweetStore


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
