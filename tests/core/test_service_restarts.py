"""Every real service of `twitstack run` survives a crash: restarted, serving, counters intact.

The crash comes through the supported hook (`[supervisor] crash_injection`, a Redis key per
service), so the real services run their real restart path in a real daemon process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import free_port
from tests.gate.cluster import Daemon, metric_sum
from twitstack.core.crash_injection import crash_key
from twitstack.writes import keys

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CONFIG = """\
env = "prod"
redis_url = "{redis_url}"
api_host = "127.0.0.1"

[supervisor]
metrics_host = "127.0.0.1"
shutdown_grace_s = 5
restart_backoff_initial_s = 0.5
crash_injection = true

[writer]
x_api_base_url = "http://127.0.0.1:9"
take_timeout_s = 0.5
metrics_port = {writer_port}

[moderation]
history_poll_block_ms = 200

[scraper]
metrics_port = {scraper_port}
account_wait_timeout_s = 0

[[scraper.jobs]]
name = "restart-probe"
kind = "search"
target = "restart"
interval_s = 0.5
"""


@dataclass(frozen=True)
class Ports:
    api: int
    writer: int
    scraper: int

    def metrics_url(self, service: str) -> str:
        port = {"moderation": self.api, "writer": self.writer, "scraper": self.scraper}[service]
        return f"http://127.0.0.1:{port}/metrics"


@pytest.fixture
def daemon(tmp_path: Path, redis_url: str) -> tuple[Daemon, Ports]:
    ports = Ports(api=free_port(), writer=free_port(), scraper=free_port())
    config = tmp_path / "twitstack.toml"
    config.write_text(
        CONFIG.format(redis_url=redis_url, writer_port=ports.writer, scraper_port=ports.scraper)
    )
    env = {
        "TWITSTACK_CONFIG": str(config),
        "TWITSTACK_DATA_DIR": str(tmp_path / "data"),
        "TWITSTACK_API_PORT": str(ports.api),
    }
    return (
        Daemon(
            name="main",
            args=["run"],
            env=env,
            ready_url=f"http://127.0.0.1:{ports.api}/healthz",
            log_path=tmp_path / "daemon.log",
        ),
        ports,
    )


async def scrape(http: httpx.AsyncClient, url: str) -> str | None:
    try:
        response = await http.get(url)
    except httpx.TransportError:
        return None  # moderation serves its own port: it is closed while the service restarts
    return response.text if response.status_code == 200 else None


async def wait_for(
    http: httpx.AsyncClient, url: str, name: str, at_least: float, **labels: str
) -> str:
    """The metrics page of `url` once `name{labels}` reaches `at_least` (bounded)."""
    with anyio.fail_after(60):
        for _ in range(600):
            text = await scrape(http, url)
            if text is not None and metric_sum(text, name, labels) >= at_least:
                return text
            await anyio.sleep(0.1)
    raise AssertionError("unreachable: fail_after fires first")


# One counter each service increments by itself, to see that a restart does not reset it.
OWN_COUNTER = {
    "writer": ("writer_dead_letters_total", {"reason": "invalid_json"}),
    "moderation": ("moderation_http_requests_total", {"route": "/healthz"}),
    "scraper": ("scraper_run_errors_total", {"kind": "no_account"}),
}


async def poke(service: str, http: httpx.AsyncClient, redis: Redis, ports: Ports, n: int) -> None:
    """Make `service` count something of its own once more."""
    if service == "writer":
        await redis.rpush(keys.WRITE_QUEUE, f"not json {n}".encode())
    elif service == "moderation":
        response = await http.get(f"http://127.0.0.1:{ports.api}/healthz")
        assert response.status_code == 200
    # the scraper's job runs (and fails for want of accounts) every half second by itself


@pytest.mark.anyio
@pytest.mark.parametrize("service", ["scraper", "writer", "moderation"])
async def test_crashed_service_comes_back_serving_with_counters_intact(
    service: str, daemon: tuple[Daemon, Ports], redis_url: str
) -> None:
    """A crash injected into one real service: restarted, its port and /metrics serve again."""
    process, ports = daemon
    counter, labels = OWN_COUNTER[service]
    url = ports.metrics_url(service)
    redis = Redis.from_url(redis_url)
    await process.start()
    try:
        await process.wait_ready()
        async with httpx.AsyncClient(timeout=2) as http:
            await poke(service, http, redis, ports, 1)
            before = await wait_for(http, url, counter, 1, **labels)
            counted = metric_sum(before, counter, labels)
            assert metric_sum(before, "twitstack_service_restarts_total", {"service": service}) == 0

            await redis.set(crash_key(service), 1)
            after = await wait_for(
                http, url, "twitstack_service_restarts_total", 1, service=service
            )
            after = await wait_for(http, url, "twitstack_service_up", 1, service=service)
            assert metric_sum(after, counter, labels) >= counted  # not reset by the restart
            await poke(service, http, redis, ports, 2)
            await wait_for(http, url, counter, counted + 1, **labels)
            # The others never went down.
            for other in {"scraper", "writer", "moderation"} - {service}:
                page = await scrape(http, ports.metrics_url(other))
                assert page is not None
                assert metric_sum(page, "twitstack_service_restarts_total") == 0
                assert metric_sum(page, "twitstack_service_up", {"service": other}) == 1
        assert process.check_alive()
        assert await redis.exists(crash_key(service)) == 0
    finally:
        code = await process.stop()
        await redis.aclose()
    log = process.log_path.read_text()
    assert f"{service}.crashed" in log
    assert "Duplicated timeseries" not in log
    assert code == 0, log[-3000:]
