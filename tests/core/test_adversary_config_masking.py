"""URL passwords the masker let through: a raw '@', a quote or a blank in the password, and a
mistyped scheme in a rejected redis_url. Each case showed the password before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.test_config_cli import twitstack
from twitstack.core.errors import RedisUnavailableError
from twitstack.core.redis import create_redis, redact_url, wait_for_redis
from twitstack.core.url_masking import mask_setting, mask_url_credentials

SECRET = "hunter2s3cr3t"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:p@{SECRET}@redis.internal:6379/0", "redis://:***@redis.internal:6379/0"),
        (f"redis://app:pa'{SECRET}@redis.internal/0", "redis://app:***@redis.internal/0"),
        (f"redis://:{SECRET} x@redis.internal/0", "redis://:***@redis.internal/0"),
        (f'rediss://:a"{SECRET}@redis.internal/1', "rediss://:***@redis.internal/1"),
    ],
    ids=["at-sign", "single-quote", "blank", "double-quote"],
)
def test_show_masks_a_password_with_any_character(tmp_path: Path, url: str, shown: str) -> None:
    result = twitstack("config", "show", cwd=tmp_path, env={"TWITSTACK_REDIS_URL": url})
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert f"redis_url = {shown!r}".replace("'", '"') in result.stdout


@pytest.mark.parametrize(
    "url",
    [
        f"redis//:{SECRET}@redis.internal:6379/0",
        f"redis:/app:{SECRET}@redis.internal",
        f"redis:{SECRET}@redis.internal",
        f"REDIS://:{SECRET}@redis.internal",
    ],
    ids=["no-colon", "one-slash", "no-slashes", "upper-case"],
)
def test_a_mistyped_redis_url_is_refused_without_its_password(tmp_path: Path, url: str) -> None:
    for command in (("config", "check"), ("config", "show"), ("run",)):
        result = twitstack(*command, cwd=tmp_path, env={"TWITSTACK_REDIS_URL": url})
        assert result.returncode == 2, result.stdout + result.stderr
        assert SECRET not in result.stdout + result.stderr
        assert "redis_url: expected a redis://" in result.stderr
        assert "@redis.internal" in result.stderr


def test_free_text_masks_up_to_the_last_at_sign_of_each_url() -> None:
    text = f"got 'redis://:a@{SECRET}@h/0' and s3://k:s@bucket, mail me@example.com"
    masked = mask_url_credentials(text)
    assert masked == "got 'redis://:***@h/0' and s3://k:***@bucket, mail me@example.com"
    assert mask_setting("alerts@example.com") == "alerts@example.com"


def test_show_masks_a_password_given_as_a_query_parameter(tmp_path: Path) -> None:
    """redis-py reads `?password=` too; `config show` printed it whole."""
    url = f"redis://redis.internal:6379/0?username=app&password={SECRET}"
    result = twitstack("config", "show", cwd=tmp_path, env={"TWITSTACK_REDIS_URL": url})
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "?username=app&password=***" in result.stdout


@pytest.mark.anyio
async def test_cannot_reach_redis_masks_a_query_password() -> None:
    """The "cannot reach Redis" error (and its warning log line) printed `?password=`."""
    url = f"redis://127.0.0.1:1/0?password={SECRET}"
    redis = create_redis(url, max_connections=1)
    try:
        with pytest.raises(RedisUnavailableError) as caught:
            await wait_for_redis(redis, url, timeout_s=0)
    finally:
        await redis.aclose()
    assert SECRET not in str(caught.value)
    assert "password=***" in str(caught.value)
    assert redact_url(f"redis://:a@{SECRET}@h/0?pwd={SECRET}") == "redis://:***@h/0?pwd=***"
