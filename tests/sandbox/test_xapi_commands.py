"""The `twitstack sandbox` subcommand's arguments."""

from __future__ import annotations

import argparse

import pytest

from twitstack.sandbox.commands import add_commands, run_sandbox, sandbox_config
from twitstack.sandbox.xapi import FaultKind


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


def test_load_test_switches_lift_limits_and_duplicate_guard() -> None:
    """--no-rate-limits empties every window; --duplicate-window 0 turns the guard off."""
    from twitstack.sandbox.xapi.config import Endpoint

    args = parser().parse_args(["sandbox", "--no-rate-limits", "--duplicate-window", "0"])
    config = sandbox_config(args)
    assert config.rate_limits == {endpoint: () for endpoint in Endpoint}
    assert config.duplicate_window_s == 0
    assert config.duplicate_lookback_posts == 0


def test_building_the_cli_does_not_import_the_fake() -> None:
    """`twitstack --help` stays cheap: the Starlette fake loads only when `sandbox` runs."""
    import subprocess
    import sys

    code = (
        "import sys, twitstack.cli as c; c.build_parser(); "
        "print([m for m in ('twitstack.sandbox.xapi.app', 'twscrape', 'fakeredis', 'aioboto3') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
