"""The tiny .env loader on the edge cases people actually write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from twitstack.core.dotenv import DotenvSyntaxError, parse_dotenv
from twitstack.core.secrets import load_dotenv


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("A=1", "1"),
        ("export A=1", "1"),
        ("A = spaced ", "spaced"),
        ("A=", ""),
        ('A=""', ""),
        ("A=''", ""),
        ("A='single $HOME \\n'", "single $HOME \\n"),
        ('A="tab\\there"', "tab\there"),
        ('A="new\\nline"', "new\nline"),
        ('A="quote \\" inside"', 'quote " inside'),
        ('A="back\\\\slash"', "back\\slash"),
        ('A="no $INTERPOLATION ${HOME}"', "no $INTERPOLATION ${HOME}"),
        ("A=value # trailing comment", "value"),
        ("A=pass#word", "pass#word"),
        ('A="hash # kept"', "hash # kept"),
        ("A='x' # comment after quotes", "x"),
        ("A=a=b=c", "a=b=c"),
        ("A=ünïcödé", "ünïcödé"),
    ],
)
def test_parses_value(line: str, expected: str) -> None:
    """Each form yields exactly the value written, without interpolation."""
    assert parse_dotenv(line) == {"A": expected}


def test_skips_comments_and_blank_lines() -> None:
    """Comment lines and blank lines are ignored."""
    assert parse_dotenv("# comment\n\n   \nA=1\n  # indented comment\n") == {"A": "1"}


def test_double_quotes_may_span_lines() -> None:
    """A double-quoted value continues until its closing quote."""
    assert parse_dotenv('KEY="-----BEGIN\nline\n-----END"\nB=2') == {
        "KEY": "-----BEGIN\nline\n-----END",
        "B": "2",
    }


@pytest.mark.parametrize("text", ["NOEQUALS", "1BAD=x", 'A="unterminated', "A='open", 'A="x" junk'])
def test_rejects_malformed_lines_with_position(text: str) -> None:
    """Malformed lines raise with the source and line number."""
    with pytest.raises(DotenvSyntaxError, match=r"^\.env:1: "):
        parse_dotenv(text)


def test_load_does_not_override_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Existing variables win unless override=True."""
    env_file = tmp_path / "x.env"
    env_file.write_text("TS_DOTENV_A=from-file\nTS_DOTENV_B=from-file\n")
    monkeypatch.setenv("TS_DOTENV_A", "from-env")
    monkeypatch.delenv("TS_DOTENV_B", raising=False)
    load_dotenv(env_file)
    assert os.environ["TS_DOTENV_A"] == "from-env"
    assert os.environ["TS_DOTENV_B"] == "from-file"
    load_dotenv(env_file, override=True)
    assert os.environ["TS_DOTENV_A"] == "from-file"


def test_missing_file_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_dotenv() without a .env in the working directory does nothing."""
    monkeypatch.chdir(tmp_path)
    before = dict(os.environ)
    load_dotenv()
    assert dict(os.environ) == before
