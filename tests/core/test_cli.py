"""The command line's shape: every command takes --config wherever it is written."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from twitstack.cli import build_parser


Leaf = tuple[tuple[str, ...], argparse.ArgumentParser]


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Leaf]:
    """Every runnable command: its words and its parser."""
    found: list[Leaf] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += leaf_commands(child, (*path, name)) or [((*path, name), child)]
    return found


@pytest.mark.parametrize("command", leaf_commands(build_parser()), ids=" ".join)
def test_config_is_accepted_after_every_command(command: tuple[str, ...]) -> None:
    """`twitstack <command> --config P` parses the path, like `twitstack --config P <command>`."""
    parser = build_parser()
    with pytest.raises(SystemExit) as help_exit:
        parser.parse_args([*command, "--config", "/tmp/x.toml", "--help"])
    assert help_exit.value.code == 0


def test_every_documented_command_exists() -> None:
    """The README's command list names only commands the CLI has."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("## The command line", 1)[1].split("```", 2)[1]
    known = {command[0] for command, _ in leaf_commands(build_parser())}
    for line in block.splitlines():
        if line.startswith("twitstack "):
            assert line.split()[1] in known, line
