"""The `twitstack sandbox` subcommand's arguments."""

from __future__ import annotations

import argparse

import pytest

from twitstack.sandbox.xapi import FaultKind
from twitstack.sandbox.xapi.commands import add_commands, run_sandbox, sandbox_config


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="twitstack")
    add_commands(root.add_subparsers(dest="command"))
    return root


def test_defaults_serve_on_loopback_without_faults() -> None:
    """Plain `sandbox` listens on 127.0.0.1:8099 and injects nothing."""
    args = parser().parse_args(["sandbox"])
    assert (args.host, args.port, args.handler) == ("127.0.0.1", 8099, run_sandbox)
    assert sandbox_config(args).faults.rates == {}


def test_faults_and_seed_are_parsed() -> None:
    """--fault KIND=RATE builds the seeded fault settings."""
    args = parser().parse_args(
        ["sandbox", "--fault", "commit_then_503=0.1", "--fault", "reset=0.05", "--seed", "9"]
    )
    faults = sandbox_config(args).faults
    assert faults.rates == {FaultKind.COMMIT_THEN_503: 0.1, FaultKind.RESET: 0.05}
    assert faults.seed == 9


def test_unknown_fault_kind_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt fault kind exits with argparse's usage error listing the kinds."""
    with pytest.raises(SystemExit):
        parser().parse_args(["sandbox", "--fault", "explode=1"])
    assert "commit_then_503" in capsys.readouterr().err
