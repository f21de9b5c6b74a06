"""`twitstack users ...` and `twitstack apikeys ...` against a real store."""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from twitstack.core.config import Settings
from twitstack.moderation.apikeys import ApiKeyStore
from twitstack.moderation.commands import add_commands
from twitstack.moderation.db import open_database

PASSWORD = "correct horse battery"


def _run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str = ""
) -> int:
    parser = argparse.ArgumentParser(prog="twitstack")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    return handler(args, settings)


def test_users_lifecycle(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(data_dir=tmp_path)
    add = ["users", "add", "alice", "--role", "moderator", "--password-stdin"]
    assert _run(settings, monkeypatch, add, PASSWORD + "\n") == 0
    assert _run(settings, monkeypatch, add, PASSWORD + "\n") == 1  # duplicate
    assert _run(settings, monkeypatch, ["users", "add", "bob"], "short\n") == 1
    assert _run(settings, monkeypatch, ["users", "role", "alice", "admin"]) == 0
    assert _run(settings, monkeypatch, ["users", "disable", "alice"]) == 0
    assert _run(settings, monkeypatch, ["users", "passwd", "ghost"], PASSWORD + "\n") == 1
    capsys.readouterr()
    assert _run(settings, monkeypatch, ["users", "list"]) == 0
    out = capsys.readouterr().out
    assert "alice" in out
    assert "admin" in out
    assert "disabled" in out


def test_apikeys_create_list_revoke(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(data_dir=tmp_path)
    _run(settings, monkeypatch, ["users", "add", "bot", "--password-stdin"], PASSWORD + "\n")
    capsys.readouterr()
    create = ["apikeys", "create", "ci", "--owner", "bot", "--scope", "read", "--scope", "write"]
    assert _run(settings, monkeypatch, create) == 0
    plaintext = capsys.readouterr().out.strip()
    assert plaintext.startswith("tsk_")

    async def verify() -> bool:
        async with open_database(tmp_path / settings.moderation.db_filename) as db:
            key = await ApiKeyStore(db, lambda: 0.0).verify(plaintext)
            return key is not None and key.scopes == ("read", "write")

    assert anyio.run(verify)
    assert _run(settings, monkeypatch, ["apikeys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "ci" in listing
    assert plaintext not in listing
    assert _run(settings, monkeypatch, ["apikeys", "revoke", "1"]) == 0
    assert not anyio.run(verify)


def test_apikeys_create_accepts_a_comma_separated_scope_list(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--scope read,write` is one flag naming two scopes; an unknown name is refused."""
    settings = make_settings(data_dir=tmp_path)
    _run(settings, monkeypatch, ["users", "add", "bot", "--password-stdin"], PASSWORD + "\n")
    capsys.readouterr()
    create = ["apikeys", "create", "ci", "--owner", "bot", "--scope", "read,write"]
    assert _run(settings, monkeypatch, create) == 0
    plaintext = capsys.readouterr().out.strip()

    async def scopes() -> tuple[str, ...] | None:
        async with open_database(tmp_path / settings.moderation.db_filename) as db:
            key = await ApiKeyStore(db, lambda: 0.0).verify(plaintext)
            return None if key is None else key.scopes

    assert anyio.run(scopes) == ("read", "write")
    with pytest.raises(SystemExit):
        _run(
            settings,
            monkeypatch,
            ["apikeys", "create", "x", "--owner", "bot", "--scope", "read,root"],
        )
    assert "found root" in capsys.readouterr().err
