"""`twitstack keys`: new pairs keep the private key off terminals; public keys derive correctly."""

from __future__ import annotations

import argparse
import io
import json
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from twitstack.core.config import Settings
from twitstack.writes.key_commands import add_commands
from twitstack.writes.signing import (
    ApprovalSigner,
    ApprovalVerifier,
    generate_key_pair,
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_to_pem,
    public_key_to_base64,
)
from twitstack.writes.wire import decode_write_request

REQUEST = (
    b'{"id": "0190f1a2-0000-7000-8000-000000000001", "action": "tweet", '
    b'"payload": {"text": "signed with a generated key"}}'
)


def invoke(settings: Settings, *argv: str) -> int:
    """Parse `argv` with the keys commands on a bare parser and run the handler."""
    parser = argparse.ArgumentParser(prog="twitstack")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    return handler(args, settings)


def field(output: str, label: str) -> str:
    """The value after `label:` on its line of human output."""
    [line] = [line for line in output.splitlines() if line.startswith(label + ":")]
    return line.split(":", 1)[1].split()[0]


class FakeTerminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


def test_generate_writes_a_0600_private_key_and_prints_only_the_public_key(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file holds a key whose approvals verify against the printed public key."""
    path = tmp_path / "approval.key"
    assert invoke(settings, "keys", "generate", "--private-out", str(path)) == 0
    captured = capsys.readouterr()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    private_text = path.read_text().strip()
    assert private_text not in captured.out
    assert private_text not in captured.err
    public_text = field(captured.out, "public key")
    assert field(captured.out, "key id") == key_id(load_public_key(public_text))
    assert f'approval_key_file = "{path}"' in captured.out
    signed = ApprovalSigner(private_text).approve(decode_write_request(REQUEST), approver="ops")
    assert ApprovalVerifier([public_text]).check(signed).ok
    assert field(captured.out, "listed in this config's [writer] approval_public_keys") == "no"


def test_generate_refuses_to_replace_an_existing_key_file(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key already in use is never overwritten; the error is one line on stderr."""
    path = tmp_path / "approval.key"
    path.write_text("the key in use\n")
    assert invoke(settings, "keys", "generate", "--private-out", str(path)) == 1
    captured = capsys.readouterr()
    assert path.read_text() == "the key in use\n"
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert str(path) in captured.err


def test_generate_to_a_pipe_puts_only_the_private_key_on_stdout(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--private-out -` into a pipe: stdout is the key alone, its public half goes to stderr."""
    assert invoke(settings, "keys", "generate", "--private-out", "-", "--json") == 0
    captured = capsys.readouterr()
    private = load_private_key(captured.out)
    assert captured.out.strip() not in captured.err
    record = json.loads(captured.err)
    assert record["public_key"] == public_key_to_base64(private.public_key())
    assert record["key_id"] == key_id(private.public_key())
    assert "private_key_file" not in record


def test_generate_refuses_to_print_a_private_key_on_a_terminal(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--private-out -` on a terminal writes nothing there and exits 2."""
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert invoke(settings, "keys", "generate", "--private-out", "-") == 2
    assert terminal.getvalue() == ""
    assert "terminal" in capsys.readouterr().err


def test_generate_requires_a_destination(settings: Settings) -> None:
    """Without --private-out the command is a usage error, not a key on the screen."""
    with pytest.raises(SystemExit) as exit_info:
        invoke(settings, "keys", "generate")
    assert exit_info.value.code == 2


@pytest.mark.parametrize("encoding", ["base64", "pem"])
def test_public_derives_the_public_key_and_says_if_writers_trust_it(
    encoding: str,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Base64 and PEM key files give the same public key; the config's trust list is checked."""
    private, public = generate_key_pair()
    _, other_public = generate_key_pair()
    text = private if encoding == "base64" else private_key_to_pem(load_private_key(private))
    path = tmp_path / "moderation-approval.key"
    path.write_text(text + "\n")
    trusting = make_settings(writer={"approval_public_keys": [other_public, public]})
    assert invoke(trusting, "keys", "public", "--key-file", str(path), "--json") == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {
        "key_id": key_id(load_public_key(public)),
        "public_key": public,
        "trusted_by_writer_config": True,
    }
    untrusting = make_settings(writer={"approval_public_keys": [other_public]})
    assert invoke(untrusting, "keys", "public", "--key-file", str(path)) == 0
    out = capsys.readouterr().out
    assert field(out, "public key") == public
    assert field(out, "listed in this config's [writer] approval_public_keys") == "no"
    assert private not in out


def test_public_reads_stdin(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--key-file -` reads the private key from stdin."""
    key = generate_private_key()
    monkeypatch.setattr(sys, "stdin", io.StringIO(private_key_to_pem(key)))
    assert invoke(settings, "keys", "public", "--key-file", "-") == 0
    assert field(capsys.readouterr().out, "public key") == public_key_to_base64(key.public_key())


@pytest.mark.parametrize("content", ["not a key at all", "c2hvcnQ=", "-----BEGIN NONSENSE-----"])
def test_public_rejects_a_file_that_is_not_a_private_key(
    content: str, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong file is one line on stderr, exit 1, and its content is not echoed."""
    path = tmp_path / "wrong.key"
    path.write_text(content)
    assert invoke(settings, "keys", "public", "--key-file", str(path)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert content not in captured.err


def test_public_reports_a_missing_file(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing key file names the path in one stderr line."""
    path = tmp_path / "absent.key"
    assert invoke(settings, "keys", "public", "--key-file", str(path)) == 1
    err = capsys.readouterr().err
    assert str(path) in err
    assert len(err.strip().splitlines()) == 1
