"""`twitstack config check|show` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def twitstack(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TWITSTACK_")}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "twitstack", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_accepts_a_valid_file(tmp_path: Path) -> None:
    """A valid file exits 0 and says so."""
    (tmp_path / "ok.toml").write_text("api_port = 8001\n")
    result = twitstack("config", "check", "--config", "ok.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "config ok" in result.stdout


def test_check_lists_each_bad_field_and_exits_2(tmp_path: Path) -> None:
    """Each bad field is one line on stderr; the exit code is 2."""
    (tmp_path / "bad.toml").write_text('redis_url = "foo"\n[writer]\nmetrics_prot = 1\n')
    result = twitstack("config", "check", "--config", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "redis_url: expected a redis:// or rediss:// or unix:// URL, got 'foo'",
        "writer.metrics_prot: unknown setting (a typo? see twitstack.toml.example)",
    ]


def test_run_with_bad_config_fails_before_starting(tmp_path: Path) -> None:
    """`twitstack run` refuses bad settings with exit 2 and one line per field."""
    (tmp_path / "bad.toml").write_text("api_port = 70000\n")
    result = twitstack("run", "--config", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "twitstack: config: api_port: Input should be less than or equal to 65535, got 70000"
    ]


def test_show_prints_sources_and_masks_secrets(tmp_path: Path) -> None:
    """Each value carries its source; secret values never appear."""
    (tmp_path / "c.toml").write_text('api_port = 8001\nminio_secret_key = "sentinel-s3cr3t"\n')
    result = twitstack(
        "config",
        "show",
        "--config",
        "c.toml",
        cwd=tmp_path,
        env={"TWITSTACK_WRITER__METRICS_PORT": "9999"},
    )
    assert result.returncode == 0, result.stderr
    assert "sentinel-s3cr3t" not in result.stdout
    assert 'minio_secret_key = "**********"  # file c.toml' in result.stdout
    assert "api_port = 8001  # file c.toml" in result.stdout
    assert "metrics_port = 9999  # env" in result.stdout
    assert 'redis_url = "redis://redis:6379/0"  # default' in result.stdout


@pytest.mark.parametrize("only", ["bogus", "writer,bogus", ","])
def test_unknown_only_name_is_a_usage_error(tmp_path: Path, only: str) -> None:
    """--only with an unknown name exits 2 listing the valid names."""
    result = twitstack("run", "--only", only, cwd=tmp_path)
    assert result.returncode == 2
    assert "valid names: scraper, writer, moderation" in result.stderr
