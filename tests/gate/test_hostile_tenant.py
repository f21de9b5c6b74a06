"""Release gate, hostile tenant: an author key and a Redis producer attack while requests flow.

The daemon must never go down (no service crash, no restart, /healthz always answering), every
good request must be executed exactly once, and every poison must end where it belongs: the
dead letters (queue messages), the quarantine (records, events, scraped items) or a 4xx.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from tests.gate import checks
from tests.gate.cluster import metric_sum, start_fakes, stop_process
from tests.gate.hostile import HostileLog, api_abuse, quarantined_kinds, redis_abuse
from tests.gate.scenario import DRAFT_WORD, prepare
from tests.gate.traffic import ApiClient, Moderator, rpush_text, seed_snippet_message
from twitstack.writer.models import WriteAction, WriteRequest
from twitstack.writes import keys

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

GOOD_API, GOOD_RPUSH, GOOD_DRAFTS = 20, 20, 2
SETTLE_S = 120.0
SERVICES = ("scraper", "writer", "moderation")


class Watch:
    """Polls /healthz and every service's /metrics while the scenario runs."""

    def __init__(self, health_url: str, metrics_urls: dict[str, str]) -> None:
        self.health_url = health_url
        self.metrics_urls = metrics_urls
        self.polls = 0
        self.failures: list[str] = []
        self.stop = anyio.Event()

    async def run(self, http: httpx.AsyncClient) -> None:
        while not self.stop.is_set():
            self.polls += 1
            try:
                health = await http.get(self.health_url)
                if health.status_code != 200:
                    self.failures.append(f"{time.monotonic():.1f} /healthz {health.status_code}")
                for service, url in self.metrics_urls.items():
                    page = (await http.get(url)).text
                    if metric_sum(page, "twitstack_service_up", {"service": service}) != 1:
                        self.failures.append(f"{time.monotonic():.1f} {service} not up")
            except httpx.HTTPError as exc:
                self.failures.append(f"{time.monotonic():.1f} {type(exc).__name__}")
            with anyio.move_on_after(0.25):
                await self.stop.wait()


async def good_api(producer: ApiClient, texts: dict[str, str], tag: str) -> None:
    for i in range(GOOD_API):
        text = f"hostile-gate {tag} api tweet {i}"
        texts[text] = "api"
        request = WriteRequest(action=WriteAction.TWEET, payload={"text": text})
        response = await producer.call(
            "POST", "/api/requests", request.to_dict(), idempotency_key=f"c-{request.id}"
        )
        assert response.status_code in (200, 201), response.text
        await anyio.sleep(0.1)


async def good_rpush(redis: Redis, texts: dict[str, str], tag: str) -> None:
    for i in range(GOOD_RPUSH):
        action, payload, text = rpush_text(i, f"{tag}-hostile-gate")
        texts[text] = "rpush"
        await redis.rpush(keys.WRITE_QUEUE, seed_snippet_message(action, payload))
        await anyio.sleep(0.1)


async def scraped(http: httpx.AsyncClient, graphql_url: str, tag: str) -> list[str]:
    """Good tweets for the draft job, and one the parser cannot read; the good ids."""
    url = f"{graphql_url}/_sandbox/tweets"
    bad = await http.post(url, json={"count": 1, "text": f"{DRAFT_WORD} bad {tag}",
                                     "malformed": True})  # fmt: skip
    bad.raise_for_status()
    good = await http.post(url, json={"count": GOOD_DRAFTS, "text": f"{DRAFT_WORD} {tag}"})
    good.raise_for_status()
    return [str(i) for i in good.json()["ids"]] + [f"bad:{bad.json()['ids'][0]}"]


async def settle(redis: Redis, moderator: Moderator, texts: dict[str, str], drafts: int) -> str:
    status = ""
    with anyio.move_on_after(SETTLE_S):
        for _ in range(int(SETTLE_S / 0.5)):
            await moderator.sweep()
            ledger = await checks.read_ledger(redis)
            by_text = {e.text: e.state for e in ledger.values()}
            waiting = [t for t in texts if by_text.get(t) != "executed"]
            executed_drafts = sum(
                1
                for e in ledger.values()
                if e.author.startswith("scraper:") and e.state == "executed"
            )
            status = f"waiting={len(waiting)} drafts={executed_drafts}/{drafts}"
            if not waiting and executed_drafts >= drafts:
                return "settled " + status
            await anyio.sleep(0.5)
    return "NOT settled " + status


@pytest.mark.anyio
async def test_hostile_tenant_cannot_take_the_daemon_down(
    tmp_path: Path, make_redis_server: Any
) -> None:
    """Poison through every door while good requests flow: all good executed once, never down."""
    tag = secrets.token_hex(3)
    redis_server = make_redis_server()
    fakes, ports = await start_fakes(tmp_path / "fakes.log")
    gate = await prepare(tmp_path, redis_server.url, ports)
    main = gate.main
    scraper_port = main.env["TWITSTACK_SCRAPER__METRICS_PORT"]
    watch = Watch(
        f"{gate.moderation_url}/healthz",
        {
            "moderation": f"{gate.moderation_url}/metrics",
            "writer": gate.writer_metrics[0],
            "scraper": f"http://127.0.0.1:{scraper_port}/metrics",
        },
    )
    problems: list[str] = []
    log = HostileLog()
    texts: dict[str, str] = {}
    try:
        async with (
            Redis.from_url(redis_server.url, socket_timeout=5) as redis,
            httpx.AsyncClient(timeout=10) as http,
        ):
            await main.start()
            await main.wait_ready()
            producer = ApiClient(gate.moderation_url, gate.producer_key, http)
            moderator = Moderator(ApiClient(gate.moderation_url, gate.moderator_key, http))
            with anyio.fail_after(SETTLE_S + 120):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch.run, http)
                    async with anyio.create_task_group() as load:
                        load.start_soon(good_api, producer, texts, tag)
                        load.start_soon(good_rpush, redis, texts, tag)
                        victims = await api_abuse(producer, log, tag)
                        await redis_abuse(redis, victims, log, tag)
                        drafted = await scraped(http, ports.graphql_url, tag)
                    outcome = await settle(redis, moderator, texts, GOOD_DRAFTS)
                    watch.stop.set()
            problems += judge_hostile(log, watch, outcome)
            problems += await judge_good(redis, ports.xapi_url, texts)
            problems += await judge_poison(redis, log, drafted)
            pages = {s: (await http.get(u)).text for s, u in watch.metrics_urls.items()}
            for service, page in pages.items():
                restarts = metric_sum(page, "twitstack_service_restarts_total")
                if restarts:
                    problems.append(f"{service} restarted {restarts:g} times")
            if not main.check_alive():
                problems.append(f"the daemon exited: {main.unexpected_exits}")
            code = await main.stop()
            if code != 0:
                problems.append(f"SIGTERM exit code {code}")
    finally:
        await main.stop()
        await stop_process(fakes)
    log_text = main.log_path.read_text(errors="replace")
    for needle in (".crashed", "Traceback", "request_failed"):
        if needle in log_text:
            problems.append(f"daemon log has {needle!r}")
    assert not problems, f"logs in {tmp_path / 'logs'}\n" + "\n".join(problems[:60])


def judge_hostile(log: HostileLog, watch: Watch, outcome: str) -> list[str]:
    problems = list(log.problems)
    if not outcome.startswith("settled"):
        problems.append(outcome)
    if watch.polls < 10:
        problems.append(f"only {watch.polls} health polls")
    problems += [f"down: {failure}" for failure in watch.failures[:10]]
    return problems


async def judge_good(redis: Redis, xapi_url: str, texts: dict[str, str]) -> list[str]:
    problems = []
    ledger = await checks.read_ledger(redis)
    by_text: dict[str, list[checks.LedgerEntry]] = {}
    for entry in ledger.values():
        by_text.setdefault(entry.text, []).append(entry)
    posts, dms = checks.fake_counts(xapi_url)
    stored = posts + dms
    for text, door in texts.items():
        found = by_text.get(text, [])
        if [e.state for e in found] != ["executed"]:
            problems.append(f"{door} {text!r}: {[(e.id, e.state) for e in found]}")
        if stored[text] != 1:
            problems.append(f"{door} {text!r} stored {stored[text]} times at the fake")
    for text, n in stored.items():
        if n > 1:
            problems.append(f"fake X stored {text!r} {n} times")
    return problems


async def judge_poison(redis: Redis, log: HostileLog, drafted: list[str]) -> list[str]:
    problems = []
    dead = {r["raw_bytes"]: r.get("reason") for r in await checks.dead_letters(redis)}
    for raw, reason in log.malformed.items():
        if dead.get(raw) != reason:
            problems.append(f"malformed {raw[:40]!r}: dead reason {dead.get(raw)}, want {reason}")
    quarantined = quarantined_kinds(await redis.lrange(keys.QUARANTINE, 0, -1))
    for event_id in log.bad_events:
        if ("event", event_id) not in quarantined:
            problems.append(f"bad event {event_id} not quarantined")
    for request_id in log.poisoned_records:
        if ("record", request_id) not in quarantined:
            problems.append(f"poisoned record {request_id} not quarantined")
    bad_tweets = [ref.removeprefix("bad:") for ref in drafted if ref.startswith("bad:")]
    for tweet_id in bad_tweets:
        if ("scraped_item", f"chaos-drafts:{tweet_id}") not in quarantined:
            problems.append(f"malformed scraped tweet {tweet_id} not quarantined")
    return problems
