"""Every service runs with only its own ACL user: enqueue → approve → post, drafts, queue stats.

Real processes (`twitstack run --only X`, `twitstack enqueue`, `twitstack queue stats`), the fake
X API and GraphQL fake in a child process, and a redis-server loaded with the shipped ACL file.
Afterwards Redis's ACL LOG must be empty: no service was refused anything on the way.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
import httpx
import pytest
import redis
from redis.asyncio import Redis

from tests.conftest import free_port
from tests.gate.cluster import Daemon, FakePorts, run_cli, start_fakes, stop_process
from tests.ops.acl_server import AclRedis, acl_redis
from twitstack.core.sealing import generate_key_ring
from twitstack.moderation.accounts import account_statuses
from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN, DEFAULT_CLIENT_ID
from twitstack.writes import keys
from twitstack.writes.signing import generate_key_pair
from twitstack.writes.token_store import SEALING_KEYS_SECRET

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CONFIG = """\
env = "prod"
api_host = "127.0.0.1"

[supervisor]
metrics_host = "127.0.0.1"
shutdown_grace_s = 5

[writer]
x_api_base_url = "{xapi_url}"
concurrency = 2
take_timeout_s = 0.5
schedule_poll_s = 0.2
heartbeat_interval_s = 1
heartbeat_ttl_s = 4
recovery_interval_s = 1
reconcile_interval_s = 1

[[writer.accounts]]
name = "default"
user_id = "1000"
auth = "oauth2"
client_id = "{client_id}"
access_token_secret = "ACL_TEST_ACCESS"

[moderation]
history_poll_block_ms = 200

[scraper]
graphql_url_override = "{graphql_url}"
account_wait_timeout_s = 5
lease_ttl_s = 5

[[scraper.jobs]]
name = "acl-job"
kind = "search"
target = "acldraft"
interval_s = 3
limit = 20

[scraper.jobs.draft]
action = "quote"
template = "Quoting @{{{{ tweet.author }}}} on {{{{ tweet.id }}}}"
as_account = "twitstack_demo"
max_per_run = 3
"""
TIMEOUT_S = 60.0


@dataclass
class Deployment:
    """One config, data directory and set of secrets; each process picks its Redis user."""

    tmp_path: Path
    server: AclRedis
    fakes: FakePorts
    api_port: int = field(default_factory=free_port)
    writer_port: int = field(default_factory=free_port)
    scraper_port: int = field(default_factory=free_port)
    daemons: list[Daemon] = field(default_factory=list)

    def env(self, user: str) -> dict[str, str]:
        config = self.tmp_path / "twitstack.toml"
        if not config.exists():
            text = CONFIG.format(
                xapi_url=self.fakes.xapi_url,
                graphql_url=self.fakes.graphql_url,
                client_id=DEFAULT_CLIENT_ID,
            )
            config.write_text(text)
        return {
            "TWITSTACK_CONFIG": str(config),
            "TWITSTACK_DATA_DIR": str(self.tmp_path / "data"),
            "TWITSTACK_REDIS_URL": self.server.url(user),
            "TWITSTACK_WRITER__APPROVAL_PUBLIC_KEYS": json.dumps([PUBLIC_KEY]),
            "TWITSTACK_MODERATION__APPROVAL_PRIVATE_KEY": PRIVATE_KEY,
            "TWITSTACK_MODERATION__SECURE_COOKIES": "false",
            "TWITSTACK_API_PORT": str(self.api_port),
            "TWITSTACK_WRITER__METRICS_PORT": str(self.writer_port),
            "TWITSTACK_SCRAPER__METRICS_PORT": str(self.scraper_port),
            "ACL_TEST_ACCESS": DEFAULT_BEARER_TOKEN,
            SEALING_KEYS_SECRET: SEALING_KEYS,
        }

    async def cli(self, user: str, *args: str, stdin: bytes = b"") -> str:
        return (await run_cli(list(args), self.env(user), self.tmp_path, stdin=stdin)).strip()

    async def start(self, user: str, services: str) -> None:
        """`twitstack run --only SERVICES` as `user`; returns once all of them answer."""
        ready = {
            "writer": f"http://127.0.0.1:{self.writer_port}/metrics",
            "moderation": f"http://127.0.0.1:{self.api_port}/healthz",
            "scraper": f"http://127.0.0.1:{self.scraper_port}/metrics",
        }
        logs = self.tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        names = services.split(",")
        daemon = Daemon(
            services, ["run", "--only", services], self.env(user), ready[names[0]],
            logs / f"{user}.log",
        )  # fmt: skip
        self.daemons.append(daemon)
        await daemon.start()
        for name in names:
            await replace(daemon, ready_url=ready[name]).wait_ready()


PRIVATE_KEY, PUBLIC_KEY = generate_key_pair()
SEALING_KEYS = generate_key_ring("k1")
TEXT = "posted through least-privilege users"


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    """The fakes, a redis-server with the shipped ACL, users and keys; daemons stopped after."""
    with acl_redis(tmp_path / "redis") as server:
        fakes_process, fakes = await start_fakes(tmp_path / "fakes.log")
        setup = Deployment(tmp_path, server, fakes)
        try:
            moderator = ["users", "add", "moderator", "--role", "moderator", "--password-stdin"]
            await setup.cli("twitstack-moderation", *moderator, stdin=b"long acl passphrase 42\n")
            for n in (1, 2):
                account = ["accounts", "add", f"acl_scraper_{n}", f"auth_token=a{n}; ct0=c{n}"]
                await setup.cli("twitstack-scraper", *account)
            yield setup
        finally:
            for daemon in setup.daemons:
                await daemon.stop()
            await stop_process(fakes_process)


async def wait_for(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll `check` until it returns true, at most TIMEOUT_S."""
    with anyio.fail_after(TIMEOUT_S):
        for _ in range(int(TIMEOUT_S / 0.2) + 1):
            if await check():
                return
            await anyio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def approve_and_post(setup: Deployment, admin: redis.Redis) -> None:
    """Enqueue as the producer, approve through the API, wait until X has the post once."""
    request_id = await setup.cli("twitstack-producer", "enqueue", "tweet", TEXT)
    create_key = ["apikeys", "create", "acl-moderator", "--owner", "moderator"]
    create_key += ["--scope", "read", "--scope", "moderate"]
    api_key = await setup.cli("twitstack-moderation", *create_key)
    base_url = f"http://127.0.0.1:{setup.api_port}"
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        token = (await http.post("/api/auth/token", json={"api_key": api_key})).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        detail: dict[str, object] = {}

        async def pending() -> bool:
            response = await http.get(f"/api/requests/{request_id}", headers=headers)
            if response.status_code == 200:
                detail.update(response.json())
            return detail.get("state") == "pending"

        await wait_for("the request to reach moderation", pending)
        # The approval names what the moderator saw (fields the API may ask for).
        approval = {k: detail[k] for k in ("revision", "content_hash") if k in detail}
        approved = await http.post(
            f"/api/requests/{request_id}/approve", json=approval, headers=headers
        )
        assert approved.status_code == 200, approved.text

    async def executed() -> bool:
        return admin.hget(keys.request(request_id), "state") == b"executed"

    await wait_for("the writer to post", executed)
    async with httpx.AsyncClient(base_url=setup.fakes.xapi_url, timeout=10) as x:
        posts = (await x.get("/_sandbox/posts")).json()["posts"]
    assert [p["text"] for p in posts].count(TEXT) == 1


async def test_each_service_works_with_only_its_own_user(deployment: Deployment) -> None:
    """Writer, moderation and scraper in their own processes, each with its own user."""
    setup = deployment
    admin = setup.server.client("twitstack-admin")
    try:
        await setup.start("twitstack-writer", "writer")
        await setup.start("twitstack-moderation", "moderation")
        await setup.start("twitstack-scraper", "scraper")
        await approve_and_post(setup, admin)

        # Moderation's accounts page code reads the writer's account state, not its tokens.
        # (X's fake sends no rate-limit headers here, so a pause is the state to show.)
        admin.hset(keys.account_paused("other"), mapping={"reason": "acl-test", "until": ""})
        as_moderation = Redis.from_url(setup.server.url("twitstack-moderation"))
        try:
            statuses = await account_statuses(as_moderation, ["default"])
        finally:
            await as_moderation.aclose()
        paused = [(s.name, s.paused_reason) for s in statuses]
        assert paused == [("default", None), ("other", "acl-test")]

        async with httpx.AsyncClient(timeout=10) as http:
            tweets = await http.post(
                f"{setup.fakes.graphql_url}/_sandbox/tweets",
                json={"count": 2, "text": "acldraft news"},
            )
            tweets.raise_for_status()

        async def drafted() -> bool:
            # The scraper's drafts went through write_queue and the writer recorded them.
            return int(admin.zcard(keys.state_index("pending"))) > 0

        await wait_for("a scraper draft in the ledger", drafted)

        stats = await setup.cli("twitstack-ops", "queue", "stats", "--json")
        assert json.loads(stats)["states"]["executed"] == 1
        dead = await setup.cli("twitstack-ops", "dlq", "list", "--json")
        assert json.loads(dead)["total"] == 0
        status = await setup.cli("twitstack-writer", "writer", "status")
        assert "account default (configured, oauth2, user 1000): active" in status
        resumed = await setup.cli("twitstack-writer", "writer", "resume", "default")
        assert resumed == "account default: was not paused"

        denied = admin.execute_command("ACL", "LOG")
        assert denied == [], denied
        sealed = admin.get(keys.sealed_oauth2_tokens("default"))
        assert sealed is not None
        assert DEFAULT_BEARER_TOKEN.encode() not in sealed
    finally:
        admin.close()


async def test_one_process_runs_every_service_as_the_daemon_user(deployment: Deployment) -> None:
    """`twitstack run` with all three services on one pool needs only twitstack-daemon."""
    setup = deployment
    admin = setup.server.client("twitstack-admin")
    try:
        await setup.start("twitstack-daemon", "writer,moderation,scraper")
        await approve_and_post(setup, admin)
        denied = admin.execute_command("ACL", "LOG")
        assert denied == [], denied
    finally:
        admin.close()
