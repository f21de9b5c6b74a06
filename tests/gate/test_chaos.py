"""The release gate: the real daemon and a writer replica under kill -9, a Redis crash and X faults.

Metrics and kill -9: a killed process loses its counters, so the run-wide comparison is the
ledger's executed requests against the fake X's stored posts and DMs; the counters themselves
are checked over a quiet phase after the faults, as deltas between two scrapes of the processes
that are then alive, against the fake's and the dead-letter list's deltas over the same phase.
"""

from __future__ import annotations

import os
import random
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.gate import checks
from tests.gate.cluster import Daemon, metric_sum, start_fakes, stop_process
from tests.gate.scenario import DRAFT_WORD, FAKE_LATENCY_S, GateSetup, prepare
from tests.gate.traffic import (
    THREAD_PARTS,
    ApiClient,
    Moderator,
    malformed,
    rpush_text,
    seed_snippet_message,
    with_redis_retry,
)
from twitstack.writer.models import WriteAction, WriteRequest
from twitstack.writes import keys

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

RPUSH_REQUESTS = 200
API_REQUESTS = 150
DRAFT_BATCHES, DRAFTS_PER_BATCH = 10, 5
MALFORMED = 500
KILLS = 22
SCENARIO_S = 600.0
SETTLE_S = 150.0
FAULTS = {  # 10% of posts and DMs, per kind
    "error_500": 0.015, "error_503": 0.015, "html_503": 0.01, "reset": 0.01,
    "latency": 0.01, "commit_then_503": 0.015, "commit_then_timeout": 0.015,
    "commit_then_reset": 0.01,
}  # fmt: skip
# `failed` is a right ending only for reasons X gave for good (none expected here).
EXPECTED_FAILURES: frozenset[str] = frozenset()


class Run:
    """Shared state of one scenario run: what was sent, what happened, what went wrong."""

    def __init__(self, gate: GateSetup, redis: Redis, xapi_url: str, graphql_url: str) -> None:
        self.gate = gate
        self.redis = redis
        self.xapi_url = xapi_url
        self.graphql_url = graphql_url
        self.tag = secrets.token_hex(3)
        self.expected_texts: dict[str, str] = {}  # text -> door
        self.malformed: dict[bytes, str] = {}  # raw -> expected reason
        self.draft_tweets: list[str] = []
        self.events: list[str] = []
        self.chaos_done = anyio.Event()
        self.producers_done = 0
        self.restart_s: list[float] = []

    def note(self, what: str) -> None:
        self.events.append(f"{time.monotonic():.1f} {what}")


async def rpush_door(run: Run, rng: random.Random) -> None:
    """The seed's producer snippet, with the malformed messages interleaved."""
    per_valid = MALFORMED / RPUSH_REQUESTS
    owed = 0.0
    bad_index = 0
    for i in range(RPUSH_REQUESTS):
        action, payload, text = rpush_text(i, run.tag)
        batch = [seed_snippet_message(action, payload)]
        run.expected_texts[text] = "rpush"
        owed += per_valid
        while owed >= 1 and bad_index < MALFORMED:
            raw, reason = malformed(bad_index)
            run.malformed[raw] = reason
            batch.insert(rng.randrange(len(batch) + 1), raw)
            bad_index += 1
            owed -= 1
        await with_redis_retry(lambda batch=batch: run.redis.rpush(keys.WRITE_QUEUE, *batch))
        await anyio.sleep(0.25)
    while bad_index < MALFORMED:
        raw, reason = malformed(bad_index)
        run.malformed[raw] = reason
        await with_redis_retry(lambda raw=raw: run.redis.rpush(keys.WRITE_QUEUE, raw))
        bad_index += 1
    run.producers_done += 1


async def api_door(run: Run, api: ApiClient) -> None:
    """POST /api/requests with an author's API key; the id makes retries idempotent."""
    for i in range(API_REQUESTS):
        text = f"chaos {run.tag} api tweet {i}"
        request = WriteRequest(action=WriteAction.TWEET, payload={"text": text})
        run.expected_texts[text] = "api"
        response = await api.call(
            "POST", "/api/requests", request.to_dict(), idempotency_key=f"create-{request.id}"
        )
        assert response.status_code in (200, 201), response.text
        await anyio.sleep(0.33)
    run.producers_done += 1


async def scraper_door(run: Run, http: httpx.AsyncClient) -> None:
    """New tweets at the GraphQL fake that the scrape job's draft rule turns into quotes."""
    for batch in range(DRAFT_BATCHES):
        response = await http.post(
            f"{run.graphql_url}/_sandbox/tweets",
            json={"count": DRAFTS_PER_BATCH, "text": f"{DRAFT_WORD} batch {batch} {run.tag}"},
        )
        response.raise_for_status()
        run.draft_tweets.extend(response.json()["ids"])
        await anyio.sleep(6)
    run.producers_done += 1


async def moderate(run: Run, moderator: Moderator, stop: anyio.Event) -> None:
    """Approve whatever is pending, through the API, until the scenario stops it."""
    for _ in range(int(SCENARIO_S / 0.5)):
        if stop.is_set():
            return
        await moderator.sweep()
        await anyio.sleep(0.5)


async def restart(daemon: Daemon, run: Run) -> None:
    started = time.monotonic()
    await daemon.kill9()
    await daemon.start()
    took = time.monotonic() - started
    run.restart_s.append(took)
    run.note(f"kill -9 {daemon.name} (#{daemon.kills}), respawned in {took:.3f} s")


async def chaos(run: Run, rng: random.Random, redis_server: RedisServer) -> None:
    """≥ 20 kill -9s of either daemon, one Redis kill -9 with AOF restart, a 429 burst."""
    daemons = [run.gate.main, run.gate.replica]
    async with httpx.AsyncClient(timeout=10) as http:
        faults = {"rates": FAULTS, "latency_s": FAKE_LATENCY_S, "seed": rng.randrange(1 << 30),
                  "endpoints": ["create_tweet", "create_dm"]}  # fmt: skip
        (await http.put(f"{run.xapi_url}/_sandbox/faults", json=faults)).raise_for_status()
        run.note("faults on")
        for i in range(KILLS):
            await anyio.sleep(rng.uniform(2.0, 4.0))
            for daemon in daemons:
                daemon.check_alive()
            # Both daemons get killed several times; the rest is random.
            target = daemons[i % 2] if i < 6 else rng.choice(daemons)
            await restart(target, run)
            if i == 9:
                await anyio.to_thread.run_sync(lambda: redis_server.stop(kill=True))
                await anyio.to_thread.run_sync(redis_server.start)
                run.note("redis kill -9 and restart (AOF)")
            if i == 14:
                windows = {"windows": [{"scope": "user", "limit": 100000, "window_s": 8}]}
                url = f"{run.xapi_url}/_sandbox/ratelimits/create_tweet"
                (await http.put(url, json=windows)).raise_for_status()
                exhaust = {"user_id": "1000", "window_s": 8}
                (await http.post(url + "/exhaust", json=exhaust)).raise_for_status()
                run.note("429 burst (8 s window exhausted)")
        (await http.put(f"{run.xapi_url}/_sandbox/faults", json={"rates": {}})).raise_for_status()
        url = f"{run.xapi_url}/_sandbox/ratelimits/create_tweet"
        (await http.put(url, json={"windows": []})).raise_for_status()
        run.note("faults off")
    run.chaos_done.set()


async def settled(run: Run) -> tuple[bool, str]:
    """Whether every expected request is terminal and nothing is queued or in flight."""
    ledger = await checks.read_ledger(run.redis)
    texts = {entry.text for entry in ledger.values()}
    missing = [t for t in run.expected_texts if t not in texts]
    drafts = [e for e in ledger.values() if e.author.startswith("scraper:")]
    sizes = await checks.index_sizes(run.redis)
    queued = int(await run.redis.llen(keys.WRITE_QUEUE))
    status = (
        f"missing={len(missing)} drafts={len(drafts)}/{len(run.draft_tweets)} "
        f"unsettled={sizes} queued={queued}"
    )
    done = (
        not missing
        and len(drafts) >= len(run.draft_tweets)
        and not any(sizes.values())
        and queued == 0
    )
    return done, status


async def wait_settled(run: Run) -> str:
    """Bounded wait for the reconciler and the writers to finish after the faults stop."""
    status = ""
    with anyio.move_on_after(SETTLE_S):
        for _ in range(int(SETTLE_S)):
            done, status = await settled(run)
            if done:
                return "settled: " + status
            await anyio.sleep(1)
    return "NOT settled: " + status


async def scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        return (await http.get(url)).text


async def quiet_phase(run: Run, moderator: Moderator) -> list[str]:
    """With faults over and both processes alive: counter deltas against the fake's deltas."""
    problems: list[str] = []
    names = ("writer_actions_processed_total", "writer_dead_letters_total")

    async def sample() -> dict[str, float]:
        pages = [await scrape(url) for url in run.gate.writer_metrics]
        out = {
            "tweet": sum(metric_sum(p, names[0], {"action": "tweet"}) for p in pages),
            "dm": sum(metric_sum(p, names[0], {"action": "dm"}) for p in pages),
            "thread": sum(metric_sum(p, names[0], {"action": "thread"}) for p in pages),
            "dead": sum(metric_sum(p, names[1]) for p in pages),
        }
        moderation = await scrape(run.gate.moderation_url + "/metrics")
        out["approve"] = metric_sum(
            moderation, "moderation_decisions_total", {"decision": "approve"}
        )
        posts, dms = checks.fake_counts(run.xapi_url)
        out["fake_posts"], out["fake_dms"] = float(posts.total()), float(dms.total())
        out["dead_list"] = float(await run.redis.llen(keys.DEAD_LETTER))
        return out

    before = await sample()
    messages = []
    made: Counter[str] = Counter()
    for i in range(25):
        action, payload, text = rpush_text(i, f"{run.tag}-quiet")
        run.expected_texts[text] = "quiet"
        messages.append(seed_snippet_message(action, payload))
        made[action.value] += 1
    expected_posts = made["tweet"] + made["thread"] * THREAD_PARTS
    for i in range(10):
        raw, reason = malformed(MALFORMED + i)
        run.malformed[raw] = reason
        messages.insert(i * 3, raw)
    await run.redis.rpush(keys.WRITE_QUEUE, *messages)
    with anyio.fail_after(90):
        for _ in range(900):
            await moderator.sweep()
            done, _ = await settled(run)
            if done:
                break
            await anyio.sleep(0.2)
    after = await sample()
    delta = {k: after[k] - before[k] for k in before}
    if (delta["tweet"], delta["thread"]) != (made["tweet"], made["thread"]):
        problems.append(f"quiet phase: tweets and threads counted {delta['tweet']}, "
                        f"{delta['thread']}, made {made['tweet']}, {made['thread']}")  # fmt: skip
    if delta["fake_posts"] != expected_posts:
        problems.append(f"quiet phase: fake stored {delta['fake_posts']} posts, "
                        f"expected {expected_posts}")  # fmt: skip
    if delta["dm"] != delta["fake_dms"] or delta["dm"] != 5:
        problems.append(f"quiet phase: DMs counted {delta['dm']}, fake stored {delta['fake_dms']}")
    if delta["dead"] != delta["dead_list"] or delta["dead"] != 10:
        problems.append(f"quiet phase: dead letters counted {delta['dead']}, list grew by "
                        f"{delta['dead_list']}, expected 10")  # fmt: skip
    if delta["approve"] != 25:
        problems.append(f"quiet phase: approvals counted {delta['approve']}, made 25")
    run.note(f"quiet phase deltas {delta}")
    return problems


async def judge(run: Run) -> list[str]:
    """Every pass criterion of the gate; returns one line per violation."""
    problems: list[str] = []
    ledger = await checks.read_ledger(run.redis)
    by_text: dict[str, list[checks.LedgerEntry]] = {}
    for entry in ledger.values():
        by_text.setdefault(entry.text, []).append(entry)
    # 1. Every approved request ends executed (or failed for an expected reason), once.
    for text, door in run.expected_texts.items():
        found = by_text.get(text, [])
        if len(found) != 1:
            problems.append(f"{door} request {text!r}: {len(found)} ledger records")
            continue
        entry = found[0]
        ok_failure = entry.state == "failed" and entry.last_reason in EXPECTED_FAILURES
        if entry.state != "executed" and not ok_failure:
            problems.append(f"{door} request {entry.id} ({text!r}) ended {entry.state} "
                            f"({entry.last_reason}) {entry.result}")  # fmt: skip
    drafts = [e for e in ledger.values() if e.author.startswith("scraper:")]
    drafted = {tid for tid in run.draft_tweets if any(tid in e.text for e in drafts)}
    for tweet_id in sorted(set(run.draft_tweets) - drafted):
        problems.append(f"scraped tweet {tweet_id}: no draft in the ledger")
    draft_counts = Counter(tid for e in drafts for tid in run.draft_tweets if tid in e.text)
    for tweet_id, n in draft_counts.items():
        if n > 1:
            problems.append(f"scraped tweet {tweet_id}: {n} drafts in the ledger")
    for entry in drafts:
        if entry.state != "executed":
            problems.append(f"draft {entry.id} ended {entry.state} ({entry.last_reason})")
    # 2. Zero duplicates at the fake; every executed request stored exactly once.
    posts, dms = checks.fake_counts(run.xapi_url)
    for text, n in (posts + dms).items():
        if n > 1:
            problems.append(f"fake X stored {text!r} {n} times")
    for entry in ledger.values():
        # A thread is one request per part text: each part stored once, none missing.
        for text in entry.parts or (entry.text,):
            stored = (dms if entry.action == "dm" else posts)[text]
            if entry.state == "executed" and stored != 1:
                problems.append(f"executed {entry.id} stored {text!r} {stored} times at the fake")
            if entry.state in ("failed", "rejected", "expired") and stored:
                problems.append(f"{entry.state} {entry.id} is stored at the fake ({stored})")
    executed = sum(len(e.parts) or 1 for e in ledger.values() if e.state == "executed")
    if executed != posts.total() + dms.total():
        problems.append(f"ledger executed {executed} posts vs fake stored "
                        f"{posts.total() + dms.total()}")  # fmt: skip
    # 2b. Each executed tweet or DM records its own post's id, and no id is recorded twice;
    # each executed thread records its parts' ids, each part answering the one before.
    stored_ids = checks.fake_ids(run.xapi_url)
    problems.extend(checks.claimed_posts(ledger, stored_ids))
    problems.extend(checks.thread_chains(ledger, stored_ids, checks.fake_replies(run.xapi_url)))
    # 3. Nothing left in sending/unknown (or any other unsettled state).
    for state, size in (await checks.index_sizes(run.redis)).items():
        if size:
            problems.append(f"{size} requests left in {state}")
    # 4. Every malformed message dead-lettered with its reason; no valid one among them.
    dead = await checks.dead_letters(run.redis)
    dead_reasons: dict[bytes, set[str]] = {}
    for record in dead:
        dead_reasons.setdefault(record["raw_bytes"], set()).add(str(record.get("reason") or ""))
    for raw, reason in run.malformed.items():
        if reason not in dead_reasons.get(raw, set()):
            problems.append(f"malformed {raw[:40]!r}: dead reasons {dead_reasons.get(raw)}, "
                            f"expected {reason}")  # fmt: skip
    for raw, reasons in dead_reasons.items():
        if raw not in run.malformed:
            problems.append(f"a valid message was dead-lettered ({reasons}): {raw[:120]!r}")
    # 5. Moderation's history equals the ledger's stream, and its states the ledger's.
    problems.extend(await history_matches_ledger(run, ledger))
    return problems


async def history_matches_ledger(run: Run, ledger: dict[str, checks.LedgerEntry]) -> list[str]:
    db = run.gate.main_data / "moderation.sqlite3"
    last = await run.redis.xrevrange(keys.EVENTS, count=1)
    last_id = last[0][0].decode() if last else None
    with anyio.move_on_after(30):
        for _ in range(300):
            if checks.history_cursor(db) == last_id:
                break
            await anyio.sleep(0.1)
    problems = []
    stream = await checks.stream_events(run.redis)
    history = checks.history_events(db)
    missing = sorted(set(stream) - set(history))
    extra = sorted(set(history) - set(stream))
    differ = [sid for sid in set(stream) & set(history) if stream[sid] != history[sid]]
    if missing or extra or differ:
        problems.append(f"history vs ledger stream: {len(missing)} missing (e.g. "
                        f"{missing[:3]}), {len(extra)} extra, {len(differ)} differ")  # fmt: skip
    states = checks.history_states(db)
    for request_id, entry in ledger.items():
        if states.get(request_id) != entry.state:
            problems.append(f"history says {request_id} is {states.get(request_id)}, "
                            f"ledger says {entry.state}")  # fmt: skip
    return problems


@pytest.mark.anyio
async def test_daemon_survives_kills_redis_crash_and_x_faults(
    tmp_path: Path, make_redis_server: Any
) -> None:
    """Under ≥20 kill -9s, a Redis crash and X faults: nothing lost, doubled or stuck."""
    seed = int(os.environ.get("GATE_SEED", secrets.randbelow(1 << 30)))
    rng = random.Random(seed)
    redis_server: RedisServer = make_redis_server(appendonly=True)
    fakes, ports = await start_fakes(tmp_path / "fakes.log")
    gate = await prepare(tmp_path, redis_server.url, ports)
    problems: list[str] = []
    run: Run | None = None
    try:
        async with (
            Redis.from_url(redis_server.url, socket_timeout=5) as redis,
            httpx.AsyncClient(timeout=10) as http,
        ):
            run = Run(gate, redis, ports.xapi_url, ports.graphql_url)
            for daemon in (gate.main, gate.replica):
                await daemon.start()
            for daemon in (gate.main, gate.replica):
                await daemon.wait_ready()
            producer = ApiClient(gate.moderation_url, gate.producer_key, http)
            moderator = Moderator(ApiClient(gate.moderation_url, gate.moderator_key, http))
            stop_moderating = anyio.Event()
            with anyio.fail_after(SCENARIO_S):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(moderate, run, moderator, stop_moderating)
                    async with anyio.create_task_group() as load:
                        load.start_soon(rpush_door, run, rng)
                        load.start_soon(api_door, run, producer)
                        load.start_soon(scraper_door, run, http)
                        load.start_soon(chaos, run, rng, redis_server)
                    for daemon in (gate.main, gate.replica):
                        if not daemon.check_alive():
                            await daemon.start()
                        await daemon.wait_ready()
                    run.note(await wait_settled(run))
                    stop_moderating.set()
                problems += await quiet_phase(run, moderator)
                problems += await judge(run)
            for daemon in (gate.main, gate.replica):
                code = await daemon.stop()
                if code != 0:
                    problems.append(f"{daemon.name}: SIGTERM exit code {code}")
                if daemon.unexpected_exits:
                    problems.append(f"{daemon.name} exited by itself: {daemon.unexpected_exits}")
            kills = gate.main.kills + gate.replica.kills
            if kills < 20:
                problems.append(f"only {kills} kill -9s happened")
            if max(run.restart_s) >= 1.0:
                problems.append(f"a respawn took {max(run.restart_s):.2f} s (gate: < 1 s)")
            if moderator.refused:
                problems.append(f"approvals refused: {list(moderator.refused.items())[:5]}")
    finally:
        for daemon in (gate.main, gate.replica):
            await daemon.stop()
        await stop_process(fakes)
    timeline = "\n".join(run.events if run else [])
    assert not problems, (
        f"seed {seed}; logs in {tmp_path / 'logs'}\n"
        + "\n".join(problems[:60])
        + f"\n--- timeline\n{timeline}"
    )
