"""A Redis user lacking something a service needs fails its start clearly, and a NOPERM while
running is logged, counted and not retried at full speed.

Real redis-server loaded with the shipped ACL file (`acl_redis`); the outdated ACL is made by
taking one pattern or command away from a shipped user, as an ACL file older than the
release would.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import free_port
from tests.gate.cluster import Daemon, clean_env, twitstack_command
from tests.ops.acl_server import AclRedis, acl_redis
from twitstack.core.redis import open_redis
from twitstack.core.redis_access import RedisPermissionError, missing_permissions
from twitstack.ops.redis_acl import ROLES, SERVICE_ROLES, service_access_needs
from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writes import keys

pytestmark = pytest.mark.anyio
WRITER = "twitstack-writer"
BUDGET = "~twitstack:budget:*"
CONFIG = """\
env = "dev"

[supervisor]
metrics_host = "127.0.0.1"

[writer]
take_timeout_s = 0.2
redis_backoff_max_s = 1
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AclRedis]:
    with acl_redis(tmp_path / "redis") as running:
        yield running


def set_writer_rules(server: AclRedis, *drop: str) -> None:
    """The writer user as the shipped file has it, without the rules `drop`."""
    role = next(role for role in ROLES if role.user == WRITER)
    assert set(drop) <= set(role.rules)
    rules = [rule for rule in role.rules if rule not in drop]
    admin = server.client("twitstack-admin")
    try:
        admin.execute_command("ACL", "SETUSER", WRITER, "resetkeys", "-@all", *rules)
    finally:
        admin.close()


def env(tmp_path: Path, server: AclRedis, metrics_port: int) -> dict[str, str]:
    config = tmp_path / "twitstack.toml"
    config.write_text(CONFIG)
    return {
        "TWITSTACK_CONFIG": str(config),
        "TWITSTACK_DATA_DIR": str(tmp_path / "data"),
        "TWITSTACK_REDIS_URL": server.url(WRITER),
        "TWITSTACK_WRITER__METRICS_PORT": str(metrics_port),
    }


async def test_every_service_has_what_it_needs_with_the_shipped_users(server: AclRedis) -> None:
    """The probe finds nothing missing for each role, nor for the one-process daemon user,
    and leaves no key and no ACL LOG entry behind (it only queues, then discards)."""
    for service, user in SERVICE_ROLES.items():
        async with open_redis(server.url(user), startup_timeout_s=5) as client:
            assert await missing_permissions(client, service_access_needs([service])) == []
    async with open_redis(server.url("twitstack-daemon"), startup_timeout_s=5) as client:
        assert await missing_permissions(client, service_access_needs(list(SERVICE_ROLES))) == []
    admin = server.client("twitstack-admin")
    try:
        assert admin.dbsize() == 0
        assert admin.execute_command("ACL", "LOG") == []
    finally:
        admin.close()


async def test_writer_missing_a_key_pattern_fails_its_start(
    tmp_path: Path, server: AclRedis
) -> None:
    """`twitstack run --only writer` with a writer user from before the budget keys exits 1
    with one line per missing permission naming the pattern and the ACL recipe; no retries."""
    set_writer_rules(server, BUDGET)
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [*twitstack_command(), "run", "--only", "writer"],
            env=clean_env(env(tmp_path, server, free_port())), cwd=tmp_path, check=False,
        )  # fmt: skip
    err = done.stderr.decode()
    assert done.returncode == 1, err
    lines = [line for line in err.splitlines() if line.startswith("twitstack: ")]
    assert len(lines) == 2, err
    for access, line in zip(("read", "write"), lines, strict=True):
        assert line.startswith(
            f"twitstack: writer: Redis user {WRITER} may not {access} keys twitstack:budget:* ("
        ), line
        assert "`twitstack redis-acl` prints the ACL file" in line
    assert "redis.unavailable" not in err
    assert "Traceback" not in err


async def test_a_missing_command_is_named(server: AclRedis) -> None:
    """A writer user without HINCRBY (the spend scripts' counter) is told so, by name."""
    set_writer_rules(server, "+@write")
    admin = server.client("twitstack-admin")
    try:
        admin.execute_command("ACL", "SETUSER", WRITER, "+@write", "-hincrby")
    finally:
        admin.close()
    async with open_redis(server.url(WRITER), startup_timeout_s=5) as client:
        lacking = await missing_permissions(client, service_access_needs(["writer"]))
    assert len(lacking) == 1, lacking
    assert lacking[0].startswith(f"Redis user {WRITER} may not run HINCRBY (")


async def test_a_user_refused_ping_fails_at_once_instead_of_waiting_for_redis(
    server: AclRedis,
) -> None:
    """PING refused is no outage: open_redis raises instead of retrying for its whole budget."""
    set_writer_rules(server, "+ping", "+@connection")
    with anyio.fail_after(20):
        with pytest.raises(RedisPermissionError, match=rf"refuses PING to user {WRITER}"):
            async with open_redis(server.url(WRITER), startup_timeout_s=3600):
                pass


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_a_permission_lost_while_running_is_logged_and_counted(
    tmp_path: Path, server: AclRedis
) -> None:
    """The writer starts; its user then loses `write_queue`: taking is refused, and each
    refusal is a counted error naming the pattern, retried at the outage pace."""
    port = free_port()
    daemon = Daemon(
        "writer", ["run", "--only", "writer"], env(tmp_path, server, port),
        f"http://127.0.0.1:{port}/metrics", tmp_path / "writer.log",
    )  # fmt: skip
    await daemon.start()
    try:
        await daemon.wait_ready()
        up = 'twitstack_service_up{service="writer"}'
        series = "writer_redis_permission_errors_total"
        with anyio.fail_after(30):
            async with httpx.AsyncClient(timeout=5) as http:
                # /metrics answers before the writer has started; its start needs the queue.
                for _ in range(300):
                    if metric((await http.get(daemon.ready_url)).text, up) == 1:
                        break
                    await anyio.sleep(0.1)
                set_writer_rules(server, f"~{keys.WRITE_QUEUE}")
                for _ in range(150):
                    if metric((await http.get(daemon.ready_url)).text, series) >= 2:
                        break
                    await anyio.sleep(0.2)
                else:
                    raise AssertionError(f"{series} stayed below 2")
    finally:
        await daemon.stop()
    log = (tmp_path / "writer.log").read_text()
    denied = [line for line in log.splitlines() if "writer.redis_permission_denied" in line]
    assert denied, log[-2000:]
    assert f"may not read keys {keys.WRITE_QUEUE} (" in denied[0]
    assert "step=take" in log or "step=message" in log
    # At most one refusal per worker per redis_backoff_max_s (1 s), not a busy loop.
    assert len(denied) < 100, len(denied)


async def test_the_budget_migration_runs_as_the_shipped_writer_user(server: AclRedis) -> None:
    """budget_core.lua reads TIME for every grant (pending.until) and when it folds an old
    in-flight counter into the budget hash; the shipped writer user may (the file before this
    release refused it), and a user without it is named by the start-up check."""
    admin = server.client("twitstack-admin")
    try:
        admin.set(keys.rate_limit_in_flight("brand", "tweets.create"), "2", px=60_000)
    finally:
        admin.close()
    async with open_redis(server.url(WRITER), startup_timeout_s=5) as client:
        budgets = RateLimitBudgets(client, clock=time.time)
        assert await budgets.reserve("brand", "tweets.create") is None
        pending = await client.hget(keys.rate_limit_budgets("brand", "tweets.create"), "pending")
    assert pending == b"3"

    set_writer_rules(server, "+time")
    async with open_redis(server.url(WRITER), startup_timeout_s=5) as client:
        lacking = await missing_permissions(client, service_access_needs(["writer"]))
    assert [line.split(" (")[0] for line in lacking] == [f"Redis user {WRITER} may not run TIME"]
