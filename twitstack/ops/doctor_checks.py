"""Doctor checks of the local setup: config, Redis, scraper accounts, ports, data directories."""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import stat
import tempfile
from pathlib import Path
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from twitstack.core.redis import MIN_REDIS_VERSION, redact_url, redis_version_tuple
from twitstack.ops.doctor_report import (
    CheckResult,
    DoctorContext,
    fail,
    measured_skew,
    ok,
    warn,
)
from twitstack.scraper.models import AccountInfo
from twitstack.scraper.paths import resolve

_REDIS_TIME_RESOLUTION_S = 1e-6
_AOF_HINT = (
    "set `appendonly yes` with `appendfsync everysec` (at most ~1 s of writes lost on a crash) "
    "or `always` (none lost, slower writes)"
)


def check_config(ctx: DoctorContext) -> list[CheckResult]:
    """The settings loaded (the CLI refuses invalid ones before doctor runs) and fit together."""
    settings = ctx.settings
    source = str(ctx.config_path) if ctx.config_path else "defaults and environment only"
    results = [ok("config", f"valid ({source}, env={settings.env})")]
    writer = settings.writer
    if writer.accounts and writer.account(None) is None:
        names = ", ".join(a.name for a in writer.accounts)
        results.append(
            warn(
                "config writer.default_account",
                f"{writer.default_account!r} is not among the accounts ({names})",
                "set writer.default_account to one of them, or requests without an account fail",
            )
        )
    if writer.require_approval and not writer.approval_public_keys:
        results.append(
            warn(
                "config writer.approval_public_keys",
                "empty: the writer cannot verify approvals, so approved requests go to review",
                "copy the public key the moderation service logs at first start "
                "(moderation.approval_key_generated) into writer.approval_public_keys",
            )
        )
    return results


async def check_redis(ctx: DoctorContext, redis: Redis) -> tuple[list[CheckResult], bool]:
    """Reachable, recent enough, not a cluster, durable, not evicting, and its clock; reachable?"""
    url = redact_url(ctx.settings.redis_url)
    try:
        with anyio.fail_after(ctx.timeout_s):
            sent = ctx.clock()
            seconds, micros = await redis.time()
            received = ctx.clock()
            server, persistence = await _info(redis)
            memory = await _config_values(redis, "maxmemory", "maxmemory-policy", "appendfsync")
    except (RedisError, OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        hint = "start Redis or set redis_url; `twitstack demo` runs without one"
        return [fail("redis", f"cannot reach {url} ({reason})", hint)], False
    skew = measured_skew(seconds + micros / 1e6, sent, received, _REDIS_TIME_RESOLUTION_S)
    if server is None or persistence is None:
        # The demo's in-process Redis (fakeredis) has no INFO; some managed services hide it.
        results = [
            warn("redis", f"{url} reachable, but it does not answer INFO: version, mode and "
                 "persistence not checked", "fine for `twitstack demo`; production needs "
                 "Redis 7 with INFO allowed for this check"),
        ]  # fmt: skip
        results.append(clock_result("clock vs Redis", skew, ctx.max_skew_s))
        return results, True
    version = str(server.get("redis_version", "0"))
    results = [_version_result(url, version, str(server.get("redis_mode", "standalone")))]
    results.append(_persistence_result(persistence, memory.get("appendfsync")))
    eviction = _eviction_result(memory)
    if eviction is not None:
        results.append(eviction)
    results.append(clock_result("clock vs Redis", skew, ctx.max_skew_s))
    return results, True


async def _info(redis: Redis) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """INFO server and persistence, or (None, None) where the server has no INFO."""
    try:
        return await redis.info("server"), await redis.info("persistence")
    except ResponseError as exc:
        if "unknown command" not in str(exc).lower():
            raise
        return None, None


async def _config_values(redis: Redis, *names: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in names:
        try:
            found = await redis.config_get(name)
        except ResponseError:
            # Managed Redis services often disable CONFIG: those checks are skipped.
            continue
        values.update({_text(key): _text(value) for key, value in found.items()})
    return values


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _version_result(url: str, version: str, mode: str) -> CheckResult:
    if redis_version_tuple(version) < MIN_REDIS_VERSION:
        wanted = ".".join(map(str, MIN_REDIS_VERSION))
        return fail("redis", f"{url} runs Redis {version}", f"upgrade to Redis {wanted} or newer")
    if mode == "cluster":
        return fail(
            "redis",
            f"{url} is a Redis Cluster node: the queue scripts need all keys on one server",
            "point redis_url at one standalone Redis (Sentinel and Cluster are not supported)",
        )
    return ok("redis", f"{url} reachable, Redis {version} ({mode})")


def _persistence_result(persistence: dict[str, object], appendfsync: str | None) -> CheckResult:
    if not int(str(persistence.get("aof_enabled", 0))):
        return warn(
            "redis persistence",
            "AOF is off: a Redis crash or restart loses queued requests and ledger changes made "
            "since the last RDB snapshot",
            _AOF_HINT,
        )
    if appendfsync == "no":
        return warn(
            "redis persistence",
            "AOF is on with appendfsync no: the OS flushes when it likes (~30 s at risk)",
            _AOF_HINT,
        )
    return ok("redis persistence", f"AOF on (appendfsync {appendfsync or 'unknown'})")


def _eviction_result(memory: dict[str, str]) -> CheckResult | None:
    policy, limit = memory.get("maxmemory-policy"), memory.get("maxmemory")
    if policy is None or limit is None:
        return None
    if limit != "0" and policy != "noeviction":
        return warn(
            "redis memory",
            f"maxmemory {limit} with policy {policy}: Redis may evict queue and ledger keys",
            "set maxmemory-policy noeviction (writes then fail loudly instead of losing data)",
        )
    return ok("redis memory", f"maxmemory-policy {policy}")


def clock_result(name: str, skew_s: float, max_skew_s: float) -> CheckResult:
    """ok within `max_skew_s` of the other clock, else a warning naming the direction."""
    if abs(skew_s) <= max_skew_s:
        return ok(name, f"within {max_skew_s:g} s (measured {skew_s:+.1f} s)")
    direction = "behind" if skew_s > 0 else "ahead of"
    return warn(
        name,
        f"this host's clock is {abs(skew_s):.1f} s {direction} the other side",
        "run NTP (systemd-timesyncd or chrony) and keep TZ=Etc/UTC",
    )


async def check_scraper_accounts(ctx: DoctorContext) -> CheckResult:
    """Active / locked / inactive counts from twscrape's accounts database."""
    settings = ctx.settings
    path = resolve(settings.scraper.accounts_db, settings.state_dir)
    jobs = len(settings.scraper.jobs)
    name = "scraper accounts"
    add_hint = "add one: twitstack accounts add USERNAME 'auth_token=…; ct0=…'"
    if not path.exists():
        if not jobs:
            return ok(name, "no scrape jobs configured and no accounts database")
        return warn(name, f"no accounts database at {path}; {jobs} jobs cannot run", add_hint)
    # Imported late: twscrape is a heavy import that only this check needs.
    from twitstack.scraper.twscrape_adapter import TwscrapeAccounts

    try:
        with anyio.fail_after(ctx.timeout_s):
            accounts = await TwscrapeAccounts(path).list_accounts()
    except (sqlite3.Error, OSError, TimeoutError) as exc:
        return fail(name, f"cannot read {path} ({type(exc).__name__}: {exc})", "check the file")
    active, locked, inactive = _account_counts(accounts, ctx.clock())
    counts = f"{active} active, {locked} locked, {inactive} inactive (of {len(accounts)})"
    if active:
        return ok(name, counts)
    if locked:
        return warn(name, counts, "wait for the locks to lapse, or add accounts")
    return warn(name, counts, "reactivate or add accounts: twitstack accounts list / add")


def _account_counts(accounts: list[AccountInfo], now: float) -> tuple[int, int, int]:
    active = locked = inactive = 0
    for info in accounts:
        # The scraper's own rule (health.state_of): locked when every queue it used is locked.
        if not info.active:
            inactive += 1
        elif info.locks and all(until.timestamp() > now for until in info.locks.values()):
            locked += 1
        else:
            active += 1
    return active, locked, inactive


def check_ports(ctx: DoctorContext) -> list[CheckResult]:
    """The listening ports are distinct and free (in use: probably a running twitstack)."""
    settings = ctx.settings
    metrics_host = settings.supervisor.metrics_host
    wanted = [
        ("api_port", settings.api_host, settings.api_port),
        ("writer.metrics_port", metrics_host, settings.writer.metrics_port),
        ("scraper.metrics_port", metrics_host, settings.scraper.metrics_port),
    ]
    results: list[CheckResult] = []
    seen: dict[int, str] = {}
    for setting, host, port in wanted:
        name = f"port {setting}"
        if port is None:
            results.append(ok(name, "not served"))
            continue
        if port == 0:
            results.append(ok(name, "0: a free port is picked at start"))
            continue
        if port in seen:
            results.append(
                fail(name, f"{port} is also {seen[port]}", f"give {setting} its own port")
            )
            continue
        seen[port] = setting
        results.append(_port_result(name, setting, host, port))
    return results


def _port_result(name: str, setting: str, host: str, port: int) -> CheckResult:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            # As uvicorn binds: a port in TIME_WAIT after a restart counts as free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except socket.gaierror as exc:
        return fail(name, f"cannot resolve host {host!r} ({exc})", "fix the host setting")
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return warn(
                name,
                f"{host}:{port} is in use: is twitstack already running?",
                f"stop whatever listens there, or change {setting}",
            )
        return fail(name, f"cannot bind {host}:{port} ({exc.strerror})", f"change {setting}")
    return ok(name, f"{host}:{port} is free")


def check_data_dirs(ctx: DoctorContext) -> list[CheckResult]:
    """The data directory (and any store placed outside it) is writable, and private."""
    settings = ctx.settings
    data_dir = settings.state_dir.absolute()
    dirs = [data_dir]
    for store in (settings.scraper.accounts_db, settings.scraper.store_db):
        parent = resolve(store, data_dir).parent
        if parent not in dirs:
            dirs.append(parent)
    return [_dir_result(path, private=path == data_dir) for path in dirs]


def _dir_result(path: Path, *, private: bool) -> CheckResult:
    name = f"directory {path}"
    if not path.exists():
        ancestor = next((p for p in path.absolute().parents if p.exists()), Path("/"))
        if os.access(ancestor, os.W_OK | os.X_OK):
            return ok(name, "does not exist yet; created (mode 0700) at start")
        return fail(name, f"missing, and {ancestor} is not writable", f"mkdir -p {path}")
    if not path.is_dir():
        return fail(name, "exists but is not a directory", "point data_dir at a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        user = _user()
        return fail(name, f"not writable ({exc.strerror})", f"chown {user} {path}")
    mode = stat.S_IMODE(path.stat().st_mode)
    if private and mode & 0o077:
        return warn(
            name,
            f"writable, but mode {mode:04o} lets others read keys and tokens kept there",
            f"chmod 700 {path}",
        )
    return ok(name, "writable")


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        return str(os.getuid())
