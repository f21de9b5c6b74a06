"""`twitstack doctor` against a real Redis and the fake X API on loopback."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import RedisServer, free_port
from twitstack.core.config import Settings
from twitstack.core.sealing import generate_key_ring
from twitstack.ops.doctor import exit_code, run_checks
from twitstack.ops.doctor_report import CheckResult, CheckStatus, DoctorContext
from twitstack.sandbox.xapi import (
    DEFAULT_BEARER_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_REFRESH_TOKEN,
    XApiSandbox,
    open_xapi_sandbox,
)
from twitstack.writes.signing import generate_key_pair

pytestmark = pytest.mark.anyio

SECRETS = {
    "MAIN_ACCESS": DEFAULT_BEARER_TOKEN,
    "MAIN_REFRESH": DEFAULT_REFRESH_TOKEN,
    "LEGACY_CONSUMER_KEY": "sandbox-consumer-key",
    "LEGACY_CONSUMER_SECRET": "sandbox-consumer-secret",
    "LEGACY_TOKEN": "1000-sandbox-access-token",
    "LEGACY_TOKEN_SECRET": "sandbox-access-token-secret",
    "TWITSTACK_SEALING_KEYS": generate_key_ring(),
}
MAIN = {
    "name": "main",
    "user_id": "1000",
    "auth": "oauth2",
    "client_id": DEFAULT_CLIENT_ID,
    "access_token_secret": "MAIN_ACCESS",
    "refresh_token_secret": "MAIN_REFRESH",
}
LEGACY = {
    "name": "legacy",
    "user_id": "1000",
    "auth": "oauth1",
    "consumer_key_secret": "LEGACY_CONSUMER_KEY",
    "consumer_secret_secret": "LEGACY_CONSUMER_SECRET",
    "access_token_secret": "LEGACY_TOKEN",
    "token_secret_secret": "LEGACY_TOKEN_SECRET",
}


@pytest.fixture
async def sandbox() -> AsyncIterator[XApiSandbox]:
    """The fake X API (write API incl. /2/users/me) on a loopback port."""
    async with open_xapi_sandbox() as running:
        yield running


@pytest.fixture
def durable_redis(make_redis_server: Callable[..., RedisServer]) -> RedisServer:
    """A private Redis with AOF on, as production should run."""
    return make_redis_server(appendonly=True)


@pytest.fixture
def doctor_settings(
    make_settings: Callable[..., Settings], durable_redis: RedisServer, sandbox: XApiSandbox
) -> Callable[..., Settings]:
    """Settings that pass every check; keyword overrides break one thing at a time."""

    def make(
        *, accounts: tuple[dict[str, str], ...] = (MAIN, LEGACY), **overrides: Any
    ) -> Settings:
        _, public_key = generate_key_pair()
        writer = {
            "x_api_base_url": sandbox.base_url,
            "accounts": accounts,
            "default_account": "main",
            "approval_public_keys": (public_key,),
            "metrics_port": free_port(),
        }
        writer.update(overrides.pop("writer", {}))
        values: dict[str, Any] = {
            "redis_url": durable_redis.url,
            "api_host": "127.0.0.1",
            "api_port": free_port(),
            "supervisor": {"metrics_host": "127.0.0.1"},
            "scraper": {"metrics_port": free_port()},
            "writer": writer,
        }
        values.update(overrides)
        return make_settings(**values)

    return make


async def _secret(name: str) -> str | None:
    return SECRETS.get(name)


async def _doctor(settings: Settings, **context: Any) -> list[CheckResult]:
    context.setdefault("secret", _secret)
    context.setdefault("timeout_s", 3.0)
    with anyio.fail_after(30):
        return await run_checks(DoctorContext(settings=settings, **context))


def _line(results: list[CheckResult], name: str) -> CheckResult:
    return next(r for r in results if r.name == name)


async def test_a_healthy_setup_is_all_ok_and_exits_0(
    doctor_settings: Callable[..., Settings],
) -> None:
    """Redis with AOF, both accounts verified at the fake X, clocks, ports and dirs all ok."""
    results = await _doctor(doctor_settings())
    rendered = "\n".join(r.render() for r in results)
    assert all(r.status is CheckStatus.OK for r in results), rendered
    assert exit_code(results) == 0
    main = _line(results, "x account main")
    assert "@twitstack_demo (id 1000), oauth2" in main.message
    assert "oauth1" in _line(results, "x account legacy").message
    assert "AOF on (appendfsync always)" in _line(results, "redis persistence").message
    names = [r.name for r in results]
    for expected in ("config", "redis", "clock vs Redis", "clock vs X", "scraper accounts"):
        assert expected in names
    assert "port api_port" in names


async def test_a_wrong_token_fails_that_account_and_exits_1(
    doctor_settings: Callable[..., Settings],
) -> None:
    """X's 401 for a bad access token is a FAIL line for that account only."""

    async def wrong(name: str) -> str | None:
        return "not-a-valid-token" if name == "MAIN_ACCESS" else SECRETS.get(name)

    results = await _doctor(doctor_settings(), secret=wrong)
    main = _line(results, "x account main")
    assert main.status is CheckStatus.FAIL
    assert "401" in main.message
    assert main.hint is not None
    assert "MAIN_ACCESS" in main.hint
    assert _line(results, "x account legacy").status is CheckStatus.OK
    assert exit_code(results) == 1


async def test_credentials_of_another_user_fail(doctor_settings: Callable[..., Settings]) -> None:
    """A token that works but belongs to someone else than user_id is caught."""
    other = {**MAIN, "user_id": "1001"}
    results = await _doctor(doctor_settings(accounts=(other,)))
    main = _line(results, "x account main")
    assert main.status is CheckStatus.FAIL
    assert "@twitstack_demo (id 1000), not user_id 1001" in main.message


async def test_a_missing_secret_fails_with_its_name(
    doctor_settings: Callable[..., Settings],
) -> None:
    """An unset secret is named, never guessed at."""

    async def nothing(name: str) -> str | None:
        return None

    results = await _doctor(doctor_settings(accounts=(LEGACY,)), secret=nothing)
    legacy = _line(results, "x account legacy")
    assert legacy.status is CheckStatus.FAIL
    assert "'LEGACY_CONSUMER_KEY' is not set" in legacy.message


async def test_unreachable_redis_fails_with_a_hint(
    doctor_settings: Callable[..., Settings],
) -> None:
    """No Redis: a FAIL line with what to do; OAuth2 accounts are skipped, OAuth1 still checked."""
    settings = doctor_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    results = await _doctor(settings)
    redis = _line(results, "redis")
    assert redis.status is CheckStatus.FAIL
    assert "cannot reach redis://127.0.0.1:" in redis.message
    assert redis.hint is not None
    assert "start Redis or set redis_url" in redis.hint
    assert _line(results, "x account main").status is CheckStatus.WARN
    assert _line(results, "x account legacy").status is CheckStatus.OK
    assert exit_code(results) == 1


async def test_redis_without_aof_is_a_warning(
    doctor_settings: Callable[..., Settings], redis_url: str
) -> None:
    """The tests' own Redis runs without AOF: warned about, with the trade-off, exit still 0."""
    results = await _doctor(doctor_settings(redis_url=redis_url))
    persistence = _line(results, "redis persistence")
    assert persistence.status is CheckStatus.WARN
    assert "AOF is off" in persistence.message
    assert persistence.hint is not None
    assert "everysec" in persistence.hint
    assert exit_code(results) == 0


async def test_a_port_in_use_is_a_warning(doctor_settings: Callable[..., Settings]) -> None:
    """Something listening on api_port: probably a running twitstack."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        results = await _doctor(doctor_settings(api_port=port))
    line = _line(results, "port api_port")
    assert line.status is CheckStatus.WARN
    assert f"127.0.0.1:{port} is in use: is twitstack already running?" in line.message
    assert exit_code(results) == 0


async def test_clock_skew_is_warned_against_redis_and_x(
    doctor_settings: Callable[..., Settings],
) -> None:
    """A host clock 30 s fast disagrees with both Redis TIME and X's Date header."""
    results = await _doctor(doctor_settings(), clock=lambda: time.time() + 30)
    for name in ("clock vs Redis", "clock vs X"):
        line = _line(results, name)
        assert line.status is CheckStatus.WARN, line
        assert "ahead of" in line.message


async def test_scraper_accounts_counted_and_none_active_warned(
    doctor_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Counts come from twscrape's database; with every account inactive it is a warning."""
    from twitstack.scraper.twscrape_adapter import TwscrapeAccounts

    settings = doctor_settings()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    accounts = TwscrapeAccounts((settings.state_dir / "scraper-accounts.db").absolute())
    await accounts.upsert_cookies("alice", "auth_token=a; ct0=b")
    await accounts.upsert_cookies("bob", "auth_token=c; ct0=d")
    line = _line(await _doctor(settings), "scraper accounts")
    assert (line.status, line.message) == (CheckStatus.OK, "2 active, 0 locked, 0 inactive (of 2)")
    await accounts.deactivate("alice", "suspended")
    await accounts.deactivate("bob", "suspended")
    line = _line(await _doctor(settings), "scraper accounts")
    assert line.status is CheckStatus.WARN
    assert line.message == "0 active, 0 locked, 2 inactive (of 2)"


async def test_an_unwritable_or_open_data_dir_is_reported(
    doctor_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A data directory that is a file fails; one readable by others is a warning."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    results = await _doctor(doctor_settings(data_dir=not_a_dir))
    assert _line(results, f"directory {not_a_dir}").status is CheckStatus.FAIL
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)
    line = _line(await _doctor(doctor_settings(data_dir=open_dir)), f"directory {open_dir}")
    assert line.status is CheckStatus.WARN
    assert line.hint == f"chmod 700 {open_dir}"


def test_measured_skew_ignores_what_rounding_and_round_trip_explain() -> None:
    """Whole-second dates within the round trip are 0; a clock 10 s fast measures about -10."""
    from twitstack.ops.doctor_report import measured_skew

    assert measured_skew(1000.0, 1000.2, 1000.4, 1.0) == 0.0
    assert measured_skew(1000.0, 1010.2, 1010.4, 1.0) == pytest.approx(-9.2)
    assert measured_skew(1010.0, 1000.0, 1000.2, 1.0) == pytest.approx(9.8)


def test_doctor_command_prints_one_line_per_check_and_a_summary(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    """Through argparse: `[FAIL] redis: …  (fix: …)` lines, a summary, exit 1 on a FAIL."""
    from tests.ops.conftest import invoke

    dead = f"127.0.0.1:{free_port()}"
    settings = make_settings(
        redis_url=f"redis://{dead}/0",
        api_host="127.0.0.1",
        writer={"x_api_base_url": f"http://{dead}"},
    )
    assert invoke(settings, "doctor", "--timeout", "1") == 1
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0].startswith("[ ok ] config: valid")
    redis_line = next(line for line in out if line.startswith("[FAIL] redis: "))
    assert "(fix: start Redis or set redis_url" in redis_line
    assert any(line.startswith("[warn] x accounts: none configured") for line in out)
    assert out[-1].endswith("failed")
    assert "doctor found problems" in captured.err


async def test_token_expiry_from_the_token_store(
    doctor_settings: Callable[..., Settings], sandbox: XApiSandbox, durable_redis: RedisServer
) -> None:
    """After a refresh the store knows the expiry; without a way to refresh, 2 h left is a warn."""
    import httpx
    from redis.asyncio import Redis

    from twitstack.core.sections.writer import XAccountSettings
    from twitstack.writer.tokens import TokenManager
    from twitstack.writer.xapi_client import XApiClient

    redis = Redis.from_url(durable_redis.url)
    try:
        async with httpx.AsyncClient() as http:
            manager = TokenManager(
                redis,
                XApiClient(http, base_url=sandbox.base_url),
                [XAccountSettings(**MAIN)],
                clock=time.time,
                secret=_secret,
            )
            with anyio.fail_after(10):
                await manager.refresh("main", DEFAULT_BEARER_TOKEN)
    finally:
        await redis.aclose()
    line = _line(await _doctor(doctor_settings(accounts=(MAIN,))), "x account main")
    assert line.status is CheckStatus.OK, line
    assert "token valid for 120 min" in line.message
    stuck = {k: v for k, v in MAIN.items() if k not in ("refresh_token_secret", "client_id")}
    line = _line(await _doctor(doctor_settings(accounts=(stuck,))), "x account main")
    assert line.status is CheckStatus.WARN
    assert "token expires in 2.0 h and cannot be refreshed" in line.message


async def test_connected_accounts_are_checked_too(
    doctor_settings: Callable[..., Settings], sandbox: XApiSandbox, durable_redis: RedisServer
) -> None:
    """An account connected with PKCE (no TOML entry) gets its own line, verified at X."""
    from urllib.parse import parse_qsl, urlsplit

    import httpx
    from redis.asyncio import Redis

    from twitstack.core.sealing import SealingKeyRing
    from twitstack.writes.token_store import SealedTokenStore
    from twitstack.writes.x_accounts import ConnectedAccounts
    from twitstack.writes.x_connect import ConnectConfig, XConnector
    from twitstack.writes.x_oauth import XOAuthClient

    async def ring() -> SealingKeyRing:
        return SealingKeyRing.parse(SECRETS["TWITSTACK_SEALING_KEYS"], source="test")

    redis = Redis.from_url(durable_redis.url)
    try:
        async with httpx.AsyncClient() as http:
            base = sandbox.base_url
            oauth = XOAuthClient(
                http, api_base=base, client_id=DEFAULT_CLIENT_ID, client_secret=None
            )
            config = ConnectConfig(
                DEFAULT_CLIENT_ID, None, f"{base}/i/oauth2/authorize", base, "http://127.0.0.1:9/cb"
            )
            accounts = ConnectedAccounts(redis, SealedTokenStore(redis, ring))
            connector = XConnector(redis, accounts, oauth, config)
            started = await connector.start("brand", ["posting"], actor="test")
            location = (await http.get(started.url)).headers["location"]
            await connector.finish(dict(parse_qsl(urlsplit(location).query)), actor="test")
    finally:
        await redis.aclose()
    results = await _doctor(doctor_settings(accounts=()))
    line = _line(results, "x account brand")
    assert line.status is CheckStatus.OK, line
    assert "@twitstack_demo (id 1000), oauth2" in line.message
    assert all(r.name != "x accounts" for r in results)
