"""The chaos scenario's set-up: config file, environment, users, keys and scraping accounts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port
from tests.gate.cluster import Daemon, FakePorts, run_cli
from twitstack.core.sealing import generate_key_ring
from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN, DEFAULT_CLIENT_ID
from twitstack.writes.signing import generate_key_pair
from twitstack.writes.token_store import SEALING_KEYS_SECRET

TOKEN_ENV = "GATE_X_ACCESS_TOKEN"
JOB = "chaos-drafts"
DRAFT_WORD = "chaosdraft"
# The fake's `latency` fault sleeps this long and then stores the post: reconcile_grace_s must
# be longer, or the reconciler would rightly conclude "absent" and re-send (a config error).
FAKE_LATENCY_S = 4.0

CONFIG = """\
env = "prod"
redis_url = "{redis_url}"
api_host = "127.0.0.1"

[supervisor]
metrics_host = "127.0.0.1"
shutdown_grace_s = 10
restart_backoff_initial_s = 0.2

[writer]
x_api_base_url = "{xapi_url}"
concurrency = 8
take_timeout_s = 0.5
connect_timeout_s = 1
read_timeout_s = 2
reconcile_grace_s = 6
reconcile_interval_s = 1
stale_sending_s = 15
schedule_poll_s = 0.2
rate_limit_margin_s = 0.2
rate_limit_jitter_s = 0.3
heartbeat_interval_s = 1
heartbeat_ttl_s = 4
recovery_interval_s = 1
shutdown_grace_s = 8
transient_attempts = 3
transient_retry_s = 0.3
redis_backoff_max_s = 1

[[writer.accounts]]
name = "default"
user_id = "1000"
auth = "oauth2"
client_id = "{client_id}"
access_token_secret = "{token_env}"

[moderation]
history_poll_block_ms = 200

[scraper]
graphql_url_override = "{graphql_url}"
account_wait_timeout_s = 5
lease_ttl_s = 5

[[scraper.jobs]]
name = "{job}"
kind = "search"
target = "{draft_word}"
interval_s = 3
limit = 500

[scraper.jobs.draft]
action = "quote"
template = "Quoting @{{{{ tweet.author }}}} on {{{{ tweet.id }}}}"
as_account = "twitstack_demo"
max_per_run = 1000
"""


@dataclass(frozen=True)
class GateSetup:
    """Everything the scenario created before the first daemon starts."""

    main: Daemon
    replica: Daemon
    moderation_url: str
    writer_metrics: tuple[str, str]
    producer_key: str
    moderator_key: str
    main_data: Path


async def prepare(tmp_path: Path, redis_url: str, fakes: FakePorts) -> GateSetup:
    """Write the config, create users, API keys and scraping accounts; build both daemons."""
    config = tmp_path / "twitstack.toml"
    config.write_text(
        CONFIG.format(
            redis_url=redis_url, xapi_url=fakes.xapi_url, graphql_url=fakes.graphql_url,
            client_id=DEFAULT_CLIENT_ID, token_env=TOKEN_ENV, job=JOB, draft_word=DRAFT_WORD,
        )
    )  # fmt: skip
    private_key, public_key = generate_key_pair()
    api_port, main_writer, replica_writer = free_port(), free_port(), free_port()
    shared = {
        "TWITSTACK_CONFIG": str(config),
        "TWITSTACK_WRITER__APPROVAL_PUBLIC_KEYS": json.dumps([public_key]),
        TOKEN_ENV: DEFAULT_BEARER_TOKEN,
        # Both writers (prod) seal and open the OAuth 2.0 tokens with the same key ring.
        SEALING_KEYS_SECRET: generate_key_ring("gate"),
    }
    main_data = tmp_path / "main-data"
    main_env = {
        **shared,
        "TWITSTACK_DATA_DIR": str(main_data),
        "TWITSTACK_API_PORT": str(api_port),
        "TWITSTACK_MODERATION__SECURE_COOKIES": "false",
        "TWITSTACK_MODERATION__APPROVAL_PRIVATE_KEY": private_key,
        "TWITSTACK_WRITER__CONSUMER_ID": "gate-main",
        "TWITSTACK_WRITER__METRICS_PORT": str(main_writer),
        "TWITSTACK_SCRAPER__METRICS_PORT": str(free_port()),
    }
    # The replica is a writer host: it holds only the public key.
    replica_env = {
        **shared,
        "TWITSTACK_DATA_DIR": str(tmp_path / "replica-data"),
        "TWITSTACK_WRITER__CONSUMER_ID": "gate-replica",
        "TWITSTACK_WRITER__METRICS_PORT": str(replica_writer),
    }
    await run_cli(["config", "check"], main_env, tmp_path)
    password = b"a long moderator passphrase 4 gate\n"
    await run_cli(["users", "add", "producer", "--role", "author", "--password-stdin"],
                  main_env, tmp_path, stdin=password)  # fmt: skip
    await run_cli(["users", "add", "moderator", "--role", "moderator", "--password-stdin"],
                  main_env, tmp_path, stdin=password)  # fmt: skip
    producer_key = await run_cli(
        ["apikeys", "create", "gate-producer", "--owner", "producer", "--scope", "write",
         "--scope", "read"], main_env, tmp_path,
    )  # fmt: skip
    moderator_key = await run_cli(
        ["apikeys", "create", "gate-moderator", "--owner", "moderator", "--scope", "read",
         "--scope", "moderate"], main_env, tmp_path,
    )  # fmt: skip
    for n in (1, 2):
        await run_cli(["accounts", "add", f"gate_scraper_{n}", f"auth_token=gate{n}; ct0=csrf{n}"],
                      main_env, tmp_path)  # fmt: skip
    logs = tmp_path / "logs"
    logs.mkdir()
    main = Daemon(
        name="main",
        args=["run"],
        env=main_env,
        ready_url=f"http://127.0.0.1:{api_port}/healthz",
        log_path=logs / "main.log",
    )
    replica = Daemon(
        name="replica",
        args=["run", "--only", "writer"],
        env=replica_env,
        ready_url=f"http://127.0.0.1:{replica_writer}/metrics",
        log_path=logs / "replica.log",
    )
    return GateSetup(
        main=main,
        replica=replica,
        moderation_url=f"http://127.0.0.1:{api_port}",
        writer_metrics=(
            f"http://127.0.0.1:{main_writer}/metrics",
            f"http://127.0.0.1:{replica_writer}/metrics",
        ),
        producer_key=producer_key.strip(),
        moderator_key=moderator_key.strip(),
        main_data=main_data,
    )
