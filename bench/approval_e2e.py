"""A moderator's approval through the whole daemon → X's 201, p50/p99, 1 and 20 in flight.

Usage: python bench/approval_e2e.py [--approvals 100] [--json]

`bench/latency.py` starts its clock at the ledger's `approve`; this one starts it where a
moderator does: `POST /api/requests/{id}/approve` on the moderation service of an otherwise idle
`twitstack run` (all services: moderation, writer, scraper with no jobs), authenticated with a
moderator's API token, bound to the revision and content hash a `GET` returned, as the UI and
API clients do. The clock stops at the minimal fake X's 201 for that text (its own wall clock,
same machine). The daemon runs pinned to CPU 0, redis-server and the fake X to CPU 1.
Each request is recorded pending by the bench (as a producer's message would be) and read
through the API before its clock starts, so moderation's ingest is not in the figure; what is:
the API's bearer-token auth and role check, the approval's signature and ledger move, the writer's
take, checks, `sending` commit, the POST and its answer. The first approval is a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from common import free_port, redis_server, start_notified, stop_daemon
from latency import quantiles
from redis.asyncio import Redis
from rig import CONSUMER_CPU, HERE, SERVER_CPU, minimal_x

from twitstack.core.sealing import generate_key_ring
from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN, DEFAULT_CLIENT_ID
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.signing import generate_key_pair

WAIT_S = 60.0
PASSWORD = b"a long bench moderator passphrase 1\n"


class Daemon:
    """`twitstack run` (every service) pinned to the consumer CPU, JSON logs to /dev/null."""

    def __init__(self, directory: Path, redis_url: str, base_url: str) -> None:
        config = directory / "twitstack.toml"
        config.write_text(
            f'[writer]\nx_api_base_url = "{base_url}"\nrequire_approval = true\n'
            f'[[writer.accounts]]\nname = "default"\nuser_id = "1000"\n'
            f'client_id = "{DEFAULT_CLIENT_ID}"\naccess_token_secret = "BENCH_ACCESS"\n'
        )
        private_key, public_key = generate_key_pair()
        self.api_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWITSTACK_")}
        env.update({
            "TWITSTACK_CONFIG": str(config), "TWITSTACK_ENV": "prod",
            "TWITSTACK_REDIS_URL": redis_url, "TWITSTACK_DATA_DIR": str(directory / "data"),
            "TWITSTACK_API_HOST": "127.0.0.1", "TWITSTACK_API_PORT": str(self.api_port),
            "TWITSTACK_MODERATION__SECURE_COOKIES": "false",
            "TWITSTACK_MODERATION__APPROVAL_PRIVATE_KEY": private_key,
            "TWITSTACK_WRITER__APPROVAL_PUBLIC_KEYS": json.dumps([public_key]),
            "TWITSTACK_SUPERVISOR__METRICS_HOST": "127.0.0.1",
            "TWITSTACK_WRITER__METRICS_PORT": "0", "TWITSTACK_SCRAPER__METRICS_PORT": "0",
            "BENCH_ACCESS": DEFAULT_BEARER_TOKEN, "TWITSTACK_SEALING_KEYS": generate_key_ring(),
            "PYTHONPATH": os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]),
        })  # fmt: skip
        self.env, self.directory = env, directory
        self.cli("users", "add", "moderator", "--role", "moderator", "--password-stdin",
                 stdin=PASSWORD)  # fmt: skip
        self.api_key = self.cli("apikeys", "create", "bench", "--owner", "moderator",
                                "--scope", "read", "--scope", "moderate").strip()  # fmt: skip
        self.stderr_path = directory / "daemon.stderr"
        self.process = start_notified(
            [sys.executable, "-m", "twitstack", "run"],
            cwd=directory,
            env=env,
            stderr_path=self.stderr_path,
            cpu=CONSUMER_CPU,
            name="the daemon",
        )

    def cli(self, *args: str, stdin: bytes = b"") -> str:
        done = subprocess.run(
            [sys.executable, "-m", "twitstack", *args], input=stdin, env=self.env,
            cwd=self.directory, capture_output=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"twitstack {' '.join(args)}: {done.stderr.decode()[-1000:]}")
        return done.stdout.decode()

    def stop(self) -> None:
        stop_daemon(self.process)


async def _measure(daemon: Daemon, redis_url: str, base_url: str,
                   approvals: int) -> dict[int, tuple[float, float]]:  # fmt: skip
    redis = Redis.from_url(redis_url)
    ledger = RequestLedger(redis)
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.api_port}", timeout=30)
    fake = httpx.AsyncClient(base_url=base_url, timeout=30)
    try:
        token = await api.post("/api/auth/token", json={"api_key": daemon.api_key})
        token.raise_for_status()
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

        async def pending(text: str) -> tuple[str, dict[str, object]]:
            request = WriteRequest(action=WriteAction.TWEET, payload={"text": text})
            await ledger.record(request, actor="bench", reason="received")
            read = await api.get(f"/api/requests/{request.id}")
            read.raise_for_status()
            detail = read.json()
            return request.id, {"revision": detail["revision"],
                                "content_hash": detail["content_hash"]}  # fmt: skip

        async def approve(request_id: str, body: dict[str, object], text: str,
                          started: dict[str, float]) -> None:  # fmt: skip
            started[text] = time.time()
            answer = await api.post(f"/api/requests/{request_id}/approve", json=body)
            if answer.status_code != 200:
                raise SystemExit(f"approve: {answer.status_code} {answer.text[:300]}")

        async def posted(texts: list[str]) -> dict[str, float]:
            with anyio.fail_after(WAIT_S):
                for _ in range(int(WAIT_S / 0.005)):
                    times: dict[str, float] = (await fake.get("/_times")).json()
                    if all(t in times for t in texts):
                        return times
                    await anyio.sleep(0.005)
            raise SystemExit("unreachable: fail_after fires first")

        warm = "e2e warm-up"
        request_id, body = await pending(warm)
        await approve(request_id, body, warm, {})
        await posted([warm])
        result: dict[int, tuple[float, float]] = {}
        for inflight in (1, 20):
            started: dict[str, float] = {}
            for batch in range(max(1, approvals // inflight)):
                texts = [f"e2e {inflight} {batch} {i}" for i in range(inflight)]
                ready = [await pending(text) for text in texts]
                async with anyio.create_task_group() as tg:
                    for text, (request_id, body) in zip(texts, ready, strict=True):
                        tg.start_soon(approve, request_id, body, text, started)
                await posted(texts)
            times = await posted(list(started))
            result[inflight] = quantiles([(times[t] - s) * 1000 for t, s in started.items()])
        return result
    finally:
        await api.aclose()
        await fake.aclose()
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--approvals", type=int, default=100, help="approvals per row")
    parser.add_argument("--json", action="store_true", help="also print one RESULT json line")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="twitstack-e2e-") as tmp,
        redis_server(cpu=SERVER_CPU) as redis_url,
        minimal_x() as base_url,
    ):
        daemon = Daemon(Path(tmp), redis_url, base_url)
        try:
            result = anyio.run(_measure, daemon, redis_url, base_url, args.approvals)
        finally:
            daemon.stop()
    for inflight, (p50, p99) in result.items():
        print(f"moderator approve (API) → X's 201, whole daemon, {inflight:>2} in flight: "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")  # fmt: skip
    if args.json:
        print("RESULT " + json.dumps({"latency_ms": result}))


if __name__ == "__main__":
    main()
