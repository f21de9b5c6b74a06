"""`[notifier]` settings: a line per bad field, secrets by name only, no start without them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from tests.notifier.conftest import RunNotifier
from twitstack.core.config import Settings
from twitstack.core.errors import ConfigError

pytestmark = pytest.mark.anyio


def problems(make_settings: Callable[..., Settings], **notifier: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        make_settings(notifier=notifier)
    return caught.value.problems


def test_each_bad_field_is_one_line(make_settings: Callable[..., Settings]) -> None:
    """Typos in event kinds, addresses and URLs are reported each on its own line."""
    found = problems(
        make_settings,
        moderation_base_url="ftp://x",
        slack={"webhook_url_secret": "S", "events": ["failed", "fialed"]},
        email={"smtp_host": "h", "from_address": "nobody", "to": ["ok@example.test"]},
    )
    assert len(found) == 3, found
    assert found[0].startswith("notifier.moderation_base_url: expected an http(s) URL")
    assert found[1].startswith("notifier.slack.events.1: Input should be ")
    assert found[2].startswith("notifier.email.from_address: expected an e-mail address")


def test_no_smtp_login_over_an_unencrypted_connection(
    make_settings: Callable[..., Settings],
) -> None:
    """A password is never sent in clear: a login needs STARTTLS or TLS."""
    email = {"smtp_host": "h", "from_address": "a@example.test", "to": ["b@example.test"],
             "username": "u", "password_secret": "P", "security": "none"}  # fmt: skip
    [line] = problems(make_settings, moderation_base_url="https://m.example", email=email)
    assert line.startswith('notifier.email: security = "none" would send the SMTP password')


def test_a_channel_needs_the_moderation_base_url(make_settings: Callable[..., Settings]) -> None:
    """Links are the point of a notification: no base URL, no start."""
    [line] = problems(make_settings, slack={"webhook_url_secret": "S"})
    assert "set moderation_base_url" in line


def test_no_channel_means_disabled(make_settings: Callable[..., Settings]) -> None:
    """Without a channel the notifier is off, and `twitstack run` does not start it."""
    from twitstack.supervisor import default_catalog, select_services

    settings = make_settings()
    assert not settings.notifier.enabled
    assert "notifier" not in select_services(default_catalog(), None, settings)
    assert select_services(default_catalog(), ["notifier"], settings) == ["notifier"]
    webhook = {"url_secret": "U", "signing_key_secret": "K"}
    enabled = make_settings(
        notifier={"moderation_base_url": "https://m.example", "webhook": webhook}
    )
    assert "notifier" in select_services(default_catalog(), None, enabled)


async def test_missing_secrets_refuse_the_start_one_line_each(
    notifier_settings: Callable[..., Settings], run_notifier: RunNotifier
) -> None:
    """Every missing or unusable secret is named at start, never a value."""
    settings = notifier_settings(
        webhook={"url_secret": "NOT_SET_URL", "signing_key_secret": "NOT_SET_KEY"},
        slack={"webhook_url_secret": "TEST_HOOK_KEY"},
    )

    async def start() -> None:
        with anyio.fail_after(10):
            async with run_notifier(settings):
                pass

    with pytest.raises(ExceptionGroup) as caught:
        await start()
    [error] = caught.value.exceptions
    assert isinstance(error, ConfigError)
    assert error.problems == [
        # The slack URL secret holds the signing key: set, but no URL.
        "notifier.slack.webhook_url_secret: secret 'TEST_HOOK_KEY' is unusable: "
        "expected an http:// or https:// URL",
        "notifier.webhook.url_secret: secret 'NOT_SET_URL' is not set",
        "notifier.webhook.signing_key_secret: secret 'NOT_SET_KEY' is not set",
    ]


def test_config_show_names_secrets_but_never_shows_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`config show` lists the secret names; the webhook URL and key never appear."""
    from twitstack.cli import main

    config = tmp_path / "twitstack.toml"
    config.write_text(
        '[notifier]\nmoderation_base_url = "https://m.example"\n'
        '[notifier.webhook]\nurl_secret = "HOOK_URL"\nsigning_key_secret = "HOOK_KEY"\n'
    )
    monkeypatch.setenv("HOOK_URL", "https://hooks.example/T/very-secret-path")
    monkeypatch.setenv("HOOK_KEY", "very-secret-key")
    for key in [k for k in list(__import__("os").environ) if k.startswith("TWITSTACK_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    assert main(["config", "show", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert 'url_secret = "HOOK_URL"' in out
    assert "very-secret" not in out


async def test_idle_without_channels(make_settings: Callable[..., Settings], redis: Redis,
                                     run_notifier: RunNotifier) -> None:  # fmt: skip
    """Selected by `--only notifier` with no channel: it starts, says so, touches nothing."""
    async with run_notifier(make_settings()):
        pass
    assert await redis.keys("twitstack:notify:*") == []


async def test_a_malformed_webhook_url_refuses_the_start_without_quoting_it(
    notifier_settings: Callable[..., Settings],
    run_notifier: RunNotifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A URL secret httpx cannot parse stops the start, named by secret, its value unshown."""
    monkeypatch.setenv("TEST_HOOK_URL", "https://[::1/hook?token=sekrit")
    settings = notifier_settings(
        webhook={"url_secret": "TEST_HOOK_URL", "signing_key_secret": "TEST_HOOK_KEY"}
    )

    async def start() -> None:
        with anyio.fail_after(10):
            async with run_notifier(settings):
                pass

    with pytest.raises(ExceptionGroup) as caught:
        await start()
    [error] = caught.value.exceptions
    assert isinstance(error, ConfigError)
    assert error.problems == [
        "notifier.webhook.url_secret: secret 'TEST_HOOK_URL' is unusable: not a URL httpx can parse"
    ]
    assert "sekrit" not in str(error)
