"""Every query of the shipped Grafana dashboard returns data from a healthy, idle daemon.

A real `twitstack run` (writer, scraper, moderation, and the notifier with a webhook channel;
the fake X API and GraphQL fake) runs with nothing approved yet; Debian's real `prometheus`
scrapes its four endpoints under the shipped job names (the notifier's as shipped commented
out) and loads the shipped rule files. Then every panel query of
deploy/grafana/dashboards/twitstack.json is evaluated through Prometheus' HTTP API, with the
dashboard's variables substituted as Grafana would ($account from its own label_values query),
and each must return at least one series: a panel that would show "No data" fails here. On
that healthy daemon no alert is pending, and every family served follows the naming scheme.
Then the process is killed (-9): TwitstackJobDown and TwitstackServiceAbsent, which need none
of its own series, turn pending for every job and service. Scrape and evaluation run every
second; the whole test takes about half a minute.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import free_port
from tests.deploy.test_metric_names import scheme_problems
from tests.deploy.test_metrics_contract import (
    RULE_FILES,
    dashboard_expressions,
    dashboard_variable_queries,
)
from tests.gate.cluster import Daemon, FakePorts, run_cli, start_fakes, stop_process
from tests.support.prometheus import running_prometheus
from tests.writer.test_x_accounts_cli import RING, connect_by_paste
from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN, DEFAULT_CLIENT_ID
from twitstack.writes.signing import generate_key_pair
from twitstack.writes.token_store import SEALING_KEYS_SECRET

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus"),
]
TOKEN_ENV = "LIVE_X_ACCESS_TOKEN"
JOB_NAMES = (
    "twitstack-writer", "twitstack-scraper", "twitstack-moderation", "twitstack-notifier",
)  # fmt: skip
HOOK_URL_ENV, HOOK_KEY_ENV = "LIVE_NOTIFY_URL", "LIVE_NOTIFY_KEY"
# Grafana's built-in variables, as a dashboard over the last hour would fill them.
BUILT_INS = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}
SETTLE_TIMEOUT_S = 45.0

CONFIG = """\
env = "prod"
redis_url = "{redis_url}"
data_dir = "{data_dir}"
api_host = "127.0.0.1"

[supervisor]
metrics_host = "127.0.0.1"
shutdown_grace_s = 5

[writer]
x_api_base_url = "{xapi_url}"
x_authorize_url = "{xapi_url}/i/oauth2/authorize"
oauth2_client_id = "{client_id}"
oauth2_redirect_uri = "http://127.0.0.1:9/accounts/x/callback"
take_timeout_s = 0.5

[[writer.accounts]]
name = "default"
user_id = "1000"
auth = "oauth2"
client_id = "{client_id}"
access_token_secret = "{token_env}"

[moderation]
history_poll_block_ms = 200

[notifier]
moderation_base_url = "http://127.0.0.1:9"

[notifier.webhook]
url_secret = "{hook_url_env}"
signing_key_secret = "{hook_key_env}"

[scraper]
graphql_url_override = "{graphql_url}"
account_wait_timeout_s = 5

[[scraper.jobs]]
name = "python-search"
kind = "search"
target = "python"
interval_s = 2
limit = 20

[scraper.jobs.draft]
action = "reply"
template = "Thanks @{{{{ tweet.author }}}}"
as_account = "default"
max_per_run = 1
"""


async def _start_daemon(
    tmp_path: Path, redis_url: str, fakes: FakePorts
) -> tuple[Daemon, dict[str, str]]:
    """Config, a scraping account, and the daemon; returns it and its four metrics targets."""
    config = tmp_path / "twitstack.toml"
    config.write_text(
        CONFIG.format(
            redis_url=redis_url, xapi_url=fakes.xapi_url, graphql_url=fakes.graphql_url,
            client_id=DEFAULT_CLIENT_ID, token_env=TOKEN_ENV, data_dir=tmp_path / "data",
            hook_url_env=HOOK_URL_ENV, hook_key_env=HOOK_KEY_ENV,
        )
    )  # fmt: skip
    # A TOML account with a static token (expiry unknown) and one connected through X's PKCE
    # flow, as an admin connects one (its token's expiry is known).
    code, out, err = await connect_by_paste(config, "--scope", "posting")
    assert code == 0, out + err
    private_key, public_key = generate_key_pair()
    api_port, writer_port, scraper_port = free_port(), free_port(), free_port()
    notifier_port = free_port()
    env = {
        "TWITSTACK_CONFIG": str(config),
        "TWITSTACK_API_PORT": str(api_port),
        "TWITSTACK_MODERATION__SECURE_COOKIES": "false",
        "TWITSTACK_MODERATION__APPROVAL_PRIVATE_KEY": private_key,
        "TWITSTACK_WRITER__APPROVAL_PUBLIC_KEYS": f'["{public_key}"]',
        "TWITSTACK_WRITER__METRICS_PORT": str(writer_port),
        "TWITSTACK_SCRAPER__METRICS_PORT": str(scraper_port),
        "TWITSTACK_NOTIFIER__METRICS_PORT": str(notifier_port),
        # Nothing is notified on an idle daemon: the webhook is configured, never called.
        HOOK_URL_ENV: "http://127.0.0.1:9/hook",
        HOOK_KEY_ENV: "live-signing-key",
        TOKEN_ENV: DEFAULT_BEARER_TOKEN,
        SEALING_KEYS_SECRET: RING,  # the one the connect command sealed the tokens with
    }
    await run_cli(["config", "check"], env, tmp_path)
    await run_cli(["accounts", "add", "live_scraper", "auth_token=live1; ct0=csrf1"], env, tmp_path)
    (tmp_path / "logs").mkdir()
    daemon = Daemon(
        name="live",
        args=["run"],
        env=env,
        ready_url=f"http://127.0.0.1:{api_port}/healthz",
        log_path=tmp_path / "logs" / "daemon.log",
    )
    targets = {
        "twitstack-writer": f"127.0.0.1:{writer_port}",
        "twitstack-scraper": f"127.0.0.1:{scraper_port}",
        "twitstack-moderation": f"127.0.0.1:{api_port}",
        "twitstack-notifier": f"127.0.0.1:{notifier_port}",
    }
    return daemon, targets


async def _query(client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/query", params={"query": expr})
    body: dict[str, Any] = answer.json()
    assert body.get("status") == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def _label_values(client: httpx.AsyncClient, query: str) -> list[str]:
    """Grafana's label_values(metric, label) through Prometheus' series API."""
    metric, label = (x.strip() for x in query.strip()[len("label_values(") : -1].rsplit(",", 1))
    answer = await client.get("/api/v1/series", params={"match[]": metric})
    series: list[dict[str, str]] = answer.json()["data"]
    return sorted({item[label] for item in series if label in item})


def _substitute(expr: str, variables: dict[str, str]) -> str:
    for name, value in sorted({**BUILT_INS, **variables}.items(), key=lambda x: -len(x[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a dashboard variable the test does not fill: {expr}"
    return expr


async def _empty_panels(client: httpx.AsyncClient, variables: dict[str, str]) -> list[str]:
    empty = []
    for title, expr in dashboard_expressions():
        if not await _query(client, _substitute(expr, variables)):
            empty.append(f"{title}: {expr}")
    return empty


async def _scraped_families(client: httpx.AsyncClient) -> set[tuple[str, str, str]]:
    """(service, series name, type) for each family a target served, from Prometheus' metadata."""
    body = (await client.get("/api/v1/targets/metadata")).json()
    found: set[tuple[str, str, str]] = set()
    for item in body["data"]:
        job, name, kind = item["target"]["job"], item["metric"], item["type"]
        if not job.startswith("twitstack-") or name.startswith(("scrape_", "up")):
            continue
        if name.endswith("_created"):  # a counter's or histogram's start time, as a gauge
            continue
        service = job.removeprefix("twitstack-")
        if name.startswith(("twitstack_service_", "twitstack_build")):
            service = "all"
        suffix = {"counter": "_total", "info": "_info"}.get(kind, "")
        found.add((service, name if name.endswith(suffix) else name + suffix, kind))
    return found


async def _targets_up(client: httpx.AsyncClient) -> set[str]:
    try:
        result = await _query(client, 'up{job=~"twitstack-.*"} == 1')
    except (httpx.HTTPError, ValueError):
        return set()  # Prometheus still starting
    return {item["metric"]["job"] for item in result}


async def test_every_dashboard_query_has_data_on_a_healthy_idle_daemon(
    redis_url: str, tmp_path: Path
) -> None:
    assert len(list(dashboard_expressions())) >= 20
    fakes, ports = await start_fakes(tmp_path / "fakes.log")
    try:
        daemon, targets = await _start_daemon(tmp_path, redis_url, ports)
        await daemon.start()
        try:
            await daemon.wait_ready()
            async with running_prometheus(tmp_path, targets, RULE_FILES, timeout=10) as client:
                variables: dict[str, str] = {}
                empty: list[str] = ["not evaluated yet"]
                with anyio.fail_after(SETTLE_TIMEOUT_S + 15):
                    for _ in range(int(SETTLE_TIMEOUT_S)):
                        await anyio.sleep(1)
                        if await _targets_up(client) != set(JOB_NAMES):
                            continue
                        variables, empty = {}, []
                        for name, query in dashboard_variable_queries():
                            values = await _label_values(client, query)
                            # Grafana's multi-value format for a regex matcher
                            variables[f"${name}"] = "(" + "|".join(values) + ")"
                            if not values:
                                empty.append(f"variable ${name}: {query} has no values")
                        empty += await _empty_panels(client, variables)
                        if not empty:
                            break
                assert await _targets_up(client) == set(JOB_NAMES)
                assert empty == [], "panel queries with no data:\n" + "\n".join(empty)
                assert variables.get("$account") == "(brand|default)"
                # A healthy daemon raises nothing, not even a pending alert (a rule reading a
                # series at 0 from the start as an event would show here).
                alerts = await _query(client, "ALERTS")
                assert [a["metric"]["alertname"] for a in alerts] == []
                # Every family each target actually serves follows the naming scheme.
                families = await _scraped_families(client)
                assert len(families) > 40
                assert [p for f in sorted(families) for p in scheme_problems(*f)] == []
                # The process dies (kill -9): its own series vanish with it, and the alerts
                # that need none of them turn pending for every job and service.
                await daemon.kill9()
                wanted = {("TwitstackJobDown", job) for job in JOB_NAMES}
                wanted |= {
                    ("TwitstackServiceAbsent", s) for s in ("writer", "scraper", "moderation")
                }
                seen: set[tuple[str, str]] = set()
                with anyio.fail_after(30):
                    for _ in range(60):
                        seen = {
                            (
                                a["metric"]["alertname"],
                                a["metric"].get("job") or a["metric"].get("service", ""),
                            )
                            for a in await _query(client, "ALERTS")
                        }
                        if wanted <= seen:
                            break
                        await anyio.sleep(0.5)
                assert wanted <= seen
                # The stat panels show numbers, not NaN, on a daemon that did nothing yet.
                flow = [
                    e for t, e in dashboard_expressions() if t == "Flow over the selected range"
                ]
                for expr in flow:
                    for item in await _query(client, _substitute(expr, variables)):
                        assert not math.isnan(float(item["value"][1])), expr
        finally:
            await daemon.stop()
    finally:
        await stop_process(fakes)
