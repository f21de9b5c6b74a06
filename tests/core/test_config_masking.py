"""Passwords inside URLs never reach `config show` or a config error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.test_config_cli import twitstack
from twitstack.core.url_masking import mask_url_credentials

SENTINEL = "hunter2-s3cr3t"


def test_show_masks_the_password_in_redis_url(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        f'redis_url = "redis://app:{SENTINEL}@redis.internal:6379/0"\n'
    )
    result = twitstack("config", "show", "--config", "c.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert SENTINEL not in result.stdout + result.stderr
    assert 'redis_url = "redis://app:***@redis.internal:6379/0"' in result.stdout


def test_show_masks_a_url_password_given_in_the_environment(tmp_path: Path) -> None:
    result = twitstack(
        "config",
        "show",
        cwd=tmp_path,
        env={"TWITSTACK_REDIS_URL": f"rediss://:{SENTINEL}@redis.internal:6380/1"},
    )
    assert result.returncode == 0, result.stderr
    assert SENTINEL not in result.stdout + result.stderr
    assert 'redis_url = "rediss://:***@redis.internal:6380/1"' in result.stdout


def test_config_errors_mask_the_password_in_a_rejected_url(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(
        f'redis_url = "http://app:{SENTINEL}@redis.internal"\napi_port = "x"\n'
    )
    check = twitstack("config", "check", "--config", "bad.toml", cwd=tmp_path)
    run = twitstack("run", "--config", "bad.toml", cwd=tmp_path)
    for result in (check, run):
        assert result.returncode == 2
        assert SENTINEL not in result.stdout + result.stderr
        assert "http://app:***@redis.internal" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://user:pw@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:pw@host", "redis://:***@host"),
        ("https://token@example.com/x", "https://***@example.com/x"),
        ("got 'redis://a:b@h' and s3://k:s@bucket", "got 'redis://a:***@h' and s3://k:***@bucket"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("mailto:someone@example.com", "mailto:someone@example.com"),
    ],
)
def test_mask_url_credentials(text: str, expected: str) -> None:
    assert mask_url_credentials(text) == expected
