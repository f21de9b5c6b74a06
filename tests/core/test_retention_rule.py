"""`config check` refuses a ledger that forgets ids before their approvals expire."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_config_check_refuses_retention_below_approval_age(tmp_path: Path) -> None:
    """ledger_retention_s < approval_max_age_s is one line on stderr and exit code 2."""
    (tmp_path / "short.toml").write_text(
        "[writer]\nledger_retention_s = 3600\napproval_max_age_s = 7200\n"
    )
    (tmp_path / "equal.toml").write_text(
        "[writer]\nledger_retention_s = 7200\napproval_max_age_s = 7200\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWITSTACK_")}

    def check(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "twitstack", "config", "check", "--config", name],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    short, equal = check("short.toml"), check("equal.toml")
    assert short.returncode == 2
    [line] = short.stderr.strip().splitlines()
    assert "ledger_retention_s (3600) must be at least approval_max_age_s (7200)" in line
    assert equal.returncode == 0, equal.stderr
