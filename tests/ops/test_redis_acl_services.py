"""Every service runs with only its own ACL user: enqueue → approve → post, drafts, queue stats.

Real processes (`twitstack run --only X`, `twitstack enqueue`, `twitstack queue stats`), the fake
X API and GraphQL fake in a child process, and a redis-server loaded with the shipped ACL file.
Afterwards Redis's ACL LOG must be empty: no service was refused anything on the way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import free_port
from tests.gate.cluster import Daemon, run_cli, start_fakes, stop_process
from tests.ops.acl_server import AclRedis, acl_redis
from twitstack.core.sealing import generate_key_ring
from twitstack.moderation.accounts import account_statuses
from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN, DEFAULT_CLIENT_ID
from twitstack.writer.token_store import SEALING_KEYS_SECRET
from twitstack.writes import keys
from twitstack.writes.signing import generate_key_pair

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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AclRedis]:
    with acl_redis(tmp_path / "redis") as running:
        yield running


async def wait_for(what: str, check: object, timeout_s: float = TIMEOUT_S) -> None:
    """Poll the async `check` until it returns true."""
    with anyio.fail_after(timeout_s):
        for _ in range(int(timeout_s / 0.2) + 1):
            if await check():  # type: ignore[operator]
                return
            await anyio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_each_service_works_with_only_its_own_user(tmp_path: Path, server: AclRedis) -> None:
    fakes_process, fakes = await start_fakes(tmp_path / "fakes.log")
    daemons: list[Daemon] = []
    admin = server.client("twitstack-admin")
    try:
        config = tmp_path / "twitstack.toml"
        config.write_text(
            CONFIG.format(
                xapi_url=fakes.xapi_url,
                graphql_url=fakes.graphql_url,
                client_id=DEFAULT_CLIENT_ID,
            )
        )
        private_key, public_key = generate_key_pair()
        api_port, writer_port, scraper_port = free_port(), free_port(), free_port()
        base = {
            "TWITSTACK_CONFIG": str(config),
            "TWITSTACK_DATA_DIR": str(tmp_path / "data"),
            "TWITSTACK_WRITER__APPROVAL_PUBLIC_KEYS": json.dumps([public_key]),
        }

        def env(user: str, **extra: str) -> dict[str, str]:
            return {**base, "TWITSTACK_REDIS_URL": server.url(user), **extra}

        moderation_env = env(
            "twitstack-moderation",
            TWITSTACK_API_PORT=str(api_port),
            TWITSTACK_MODERATION__SECURE_COOKIES="false",
            TWITSTACK_MODERATION__APPROVAL_PRIVATE_KEY=private_key,
        )
        writer_env = env(
            "twitstack-writer",
            ACL_TEST_ACCESS=DEFAULT_BEARER_TOKEN,
            TWITSTACK_WRITER__METRICS_PORT=str(writer_port),
            **{SEALING_KEYS_SECRET: generate_key_ring("k1")},
        )
        scraper_env = env("twitstack-scraper", TWITSTACK_SCRAPER__METRICS_PORT=str(scraper_port))
        password = b"a long moderator passphrase for acl\n"
        await run_cli(
            ["users", "add", "moderator", "--role", "moderator", "--password-stdin"],
            moderation_env,
            tmp_path,
            stdin=password,
        )
        api_key = (
            await run_cli(
                [
                    "apikeys",
                    "create",
                    "acl-moderator",
                    "--owner",
                    "moderator",
                    "--scope",
                    "read",
                    "--scope",
                    "moderate",
                ],
                moderation_env,
                tmp_path,
            )
        ).strip()
        for n in (1, 2):
            await run_cli(
                ["accounts", "add", f"acl_scraper_{n}", f"auth_token=acl{n}; ct0=csrf{n}"],
                scraper_env,
                tmp_path,
            )
        logs = tmp_path / "logs"
        logs.mkdir()
        for name, service_env, ready in (
            ("writer", writer_env, f"http://127.0.0.1:{writer_port}/metrics"),
            ("moderation", moderation_env, f"http://127.0.0.1:{api_port}/healthz"),
            ("scraper", scraper_env, f"http://127.0.0.1:{scraper_port}/metrics"),
        ):
            daemon = Daemon(name, ["run", "--only", name], service_env, ready, logs / f"{name}.log")
            daemons.append(daemon)
            await daemon.start()
        for daemon in daemons:
            await daemon.wait_ready()

        # A producer enqueues with the producer user only.
        request_id = (
            await run_cli(
                ["enqueue", "tweet", "posted through least-privilege users"],
                env("twitstack-producer"),
                tmp_path,
            )
        ).strip()

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as http:
            token = (await http.post("/api/auth/token", json={"api_key": api_key})).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            detail: dict[str, object] = {}

            async def pending() -> bool:
                response = await http.get(f"/api/requests/{request_id}", headers=headers)
                if response.status_code == 200:
                    detail.update(response.json())
                return response.status_code == 200 and detail.get("state") == "pending"

            await wait_for("the request to reach moderation", pending)
            approval = {k: detail[k] for k in ("revision", "content_hash") if k in detail}
            approved = await http.post(
                f"/api/requests/{request_id}/approve", json=approval, headers=headers
            )
            assert approved.status_code == 200, approved.text

            async def executed() -> bool:
                return admin.hget(keys.request(request_id), "state") == b"executed"

            await wait_for("the writer to post", executed)
            async with httpx.AsyncClient(base_url=fakes.xapi_url, timeout=10) as x:
                posts = (await x.get("/_sandbox/posts")).json()
            texts = [p["text"] for p in posts["posts"]]
            assert texts.count("posted through least-privilege users") == 1

        # Moderation's accounts page code reads the writer's account state, not its tokens.
        # (X's fake sends no rate-limit headers here, so a pause is the state to show.)
        admin.hset(keys.account_paused("other"), mapping={"reason": "acl-test", "until": ""})
        as_moderation = Redis.from_url(server.url("twitstack-moderation"))
        try:
            statuses = await account_statuses(as_moderation, ["default"])
        finally:
            await as_moderation.aclose()
        assert [(s.name, s.paused_reason) for s in statuses] == [
            ("default", None),
            ("other", "acl-test"),
        ]

        async with httpx.AsyncClient(timeout=10) as http:
            tweets = await http.post(
                f"{fakes.graphql_url}/_sandbox/tweets", json={"count": 2, "text": "acldraft news"}
            )
            tweets.raise_for_status()

        async def drafted() -> bool:
            # The scraper's drafts went through write_queue and the writer recorded them.
            return int(admin.zcard(keys.state_index("pending"))) > 0

        await wait_for("a scraper draft in the ledger", drafted)

        stats = await run_cli(["queue", "stats", "--json"], env("twitstack-ops"), tmp_path)
        assert json.loads(stats)["states"]["executed"] == 1

        denied = admin.execute_command("ACL", "LOG")
        assert denied == [], denied
        # No token, sealed or not, is readable in plain text by anyone.
        sealed = admin.get(keys.sealed_oauth2_tokens("default"))
        assert sealed is not None
        assert DEFAULT_BEARER_TOKEN.encode() not in sealed
    finally:
        for daemon in daemons:
            await daemon.stop()
        await stop_process(fakes_process)
        admin.close()
