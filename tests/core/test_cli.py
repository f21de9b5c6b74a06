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


@pytest.mark.parametrize("leaf", leaf_commands(build_parser()), ids=lambda leaf: " ".join(leaf[0]))
def test_config_is_accepted_after_every_command(leaf: Leaf) -> None:
    """`twitstack <command> --config P` works like `twitstack --config P <command>`."""
    _, parser = leaf
    assert "--config" in parser._option_string_actions


def test_config_after_the_command_reaches_the_settings(tmp_path: Path) -> None:
    """The path given after the command is the one the CLI loads."""
    config = tmp_path / "c.toml"
    config.write_text("api_port = 8111\n")
    args = build_parser().parse_args(["queue", "stats", "--config", str(config)])
    assert args.config == str(config)


def test_every_documented_command_exists() -> None:
    """The README's command list names only commands the CLI has."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("## The command line", 1)[1].split("```", 2)[1]
    known = {command[0] for command, _ in leaf_commands(build_parser())}
    listed = [line.split()[1] for line in block.splitlines() if line.startswith("twitstack ")]
    assert listed
    assert [name for name in listed if name not in known] == []
