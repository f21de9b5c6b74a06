"""Jobs/s and cost per job of the real writer beside a lean consumer, arq and saq, same run.

Usage: python bench/writer_throughput.py [--requests 2000] [--rounds 2] [--concurrency 48]
           [--venv DIR | --no-peers] [--latency 100] [--json]
       full size (issue 14's table): --requests 10000 --rounds 3

Every consumer takes N jobs from a private redis-server and POSTs each as a tweet to a minimal
fake X (bench/minimal_x.py: a bare asyncio HTTP/1.1 server, not the sandbox, whose ~2 ms of CPU
per POST would be the bottleneck). The fake's ceiling is measured alone first and printed.
Each consumer is its own process pinned to CPU 0; Redis and the fake X are pinned to CPU 1.
Rows: the lean reference (BLMOVE → POST → LREM, bench/lean_consumer.py), the writer as
`twitstack run --only writer` (JSON logs to /dev/null) on three paths, and arq and saq. The
writer's paths: "moderation-approved" is what a moderator's approve produces — each request was
recorded pending and approved through the ledger before GO (the producer's side, as the peers'
enqueues are), so the job is the writer's own work on an approved request; "signed, new record"
is a signed approved message pushed by a producer with no ledger record yet, which the writer
records first; "require_approval=false" is an unsigned pending message the writer records,
approves and sends. arq and
saq (installed from PyPI into a throwaway venv by bench/peers.py). Per row, medians over rounds:
jobs/s, ratio to lean, worker CPU µs/job, Redis commands/job (INFO commandstats, commands run
inside Lua scripts included; "Lua/job" = the EVALSHA/FCALL calls among them) and Redis CPU
µs/job. Then the latency of a moderator's approval (the ledger's approve, which pushes the
signed request onto `write_queue`) to X's 201, p50/p99, with 1 and 20 approvals in flight.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio
from common import approved_tweets, can_pin, redis_server, start_notified, stop_daemon
from latency import approval_latency
from peers import PEER_SCRIPT, make_venv
from redis.asyncio import Redis as AsyncRedis
from rig import CONSUMER_CPU, HERE, SERVER_CPU, Child, Rig, Sample, fake_ceiling, minimal_x

from twitstack.core.sealing import generate_key_ring
from twitstack.sandbox.xapi.config import DEFAULT_BEARER_TOKEN, DEFAULT_CLIENT_ID
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import WriteAction, WriteRequest
from twitstack.writes.signing import ApprovalSigner, generate_key_pair
from twitstack.writes.wire import encode_write_request

RUN_TIMEOUT_S = 600.0
LEAN = "lean BLMOVE→POST→LREM"
WRITER_OPEN = "writer, require_approval=false"
WRITER_SIGNED = "writer, signed, new record"
WRITER_MODERATED = "writer, moderation-approved"
HTTPX_MARK = ", httpx transport"  # a writer row run with [writer] http_transport = "httpx"
STAGED = "bench:staged"  # the approved messages wait here until GO renames it write_queue


class WriterDaemon:
    """`twitstack run --only writer` pinned to the consumer CPU, JSON logs to /dev/null."""

    def __init__(self, rig: Rig, directory: Path, concurrency: int, public_key: str,
                 require_approval: bool, http: str = "lean") -> None:  # fmt: skip
        config = directory / "writer.toml"
        config.write_text(
            f'[writer]\nx_api_base_url = "{rig.base_url}"\nconcurrency = {concurrency}\n'
            f'http_transport = "{http}"\n'
            f"require_approval = {'true' if require_approval else 'false'}\n"
            f'approval_public_keys = ["{public_key}"]\n'
            f'[[writer.accounts]]\nname = "default"\nuser_id = "1000"\n'
            f'client_id = "{DEFAULT_CLIENT_ID}"\naccess_token_secret = "BENCH_ACCESS"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWITSTACK_")}
        env.update({
            "TWITSTACK_CONFIG": str(config), "TWITSTACK_ENV": "prod",
            "TWITSTACK_REDIS_URL": rig.redis_url, "TWITSTACK_DATA_DIR": str(directory / "data"),
            "TWITSTACK_SUPERVISOR__METRICS_HOST": "127.0.0.1",
            "TWITSTACK_WRITER__METRICS_PORT": "0", "BENCH_ACCESS": DEFAULT_BEARER_TOKEN,
            # prod keeps OAuth 2.0 tokens sealed in Redis under this ring (required in prod)
            "TWITSTACK_SEALING_KEYS": generate_key_ring(),
            "PYTHONPATH": os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]),
        })  # fmt: skip
        self.stderr_path = directory / "writer.stderr"
        self.process = start_notified(
            [sys.executable, "-m", "twitstack", "run", "--only", "writer"],
            cwd=directory,
            env=env,
            stderr_path=self.stderr_path,
            cpu=CONSUMER_CPU,
            name="the writer",
        )

    def stop(self) -> None:
        stop_daemon(self.process)


def wait_executed(rig: Rig, count: int) -> dict[str, int]:
    """Poll the ledger's executed index until `count` are there; returns the rig's own calls."""
    executed, polls = keys.state_index("executed"), 0
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        polls += 1
        if int(rig.redis.zcard(executed)) >= count:
            return {"zcard": polls}
        time.sleep(0.02)
    raise SystemExit(f"the writer executed fewer than {count} requests in {RUN_TIMEOUT_S} s")


def run_writer(rig: Rig, tmp: Path, args: argparse.Namespace, public_key: str,
               messages: list[bytes] | int, require_approval: bool,
               http: str = "lean") -> Sample:  # fmt: skip
    """`messages` are pushed at GO; an int N says N approved messages wait in STAGED."""
    daemon = WriterDaemon(rig, tmp, args.concurrency, public_key, require_approval, http)
    jobs = messages if isinstance(messages, int) else len(messages)
    own = "rename" if isinstance(messages, int) else "rpush"
    try:

        def go() -> float:
            started = time.time()
            if isinstance(messages, int):
                # One atomic step makes all N visible, and wakes the writer's blocked BLMOVEs.
                rig.redis.rename(STAGED, keys.WRITE_QUEUE)
            else:
                rig.redis.rpush(keys.WRITE_QUEUE, *messages)
            return started

        return rig.measure(daemon.process.pid, jobs, go,
                           lambda: {**wait_executed(rig, jobs), own: 1})  # fmt: skip
    finally:
        daemon.stop()


def stage_approved(rig: Rig, signer: ApprovalSigner, count: int, tag: str) -> int:
    """Record `count` tweets pending and approve each through the ledger, as moderation does;
    the signed messages the approvals pushed are moved to STAGED. Returns `count`."""

    async def one(ledger: RequestLedger, i: int) -> None:
        request = WriteRequest(action=WriteAction.TWEET, payload={"text": f"{tag} {i}"})
        await ledger.record(request, actor="bench", reason="received")
        moved = await ledger.approve(request.id, signer.sign(request, approver="bench"),
                                     expected_revision=request.revision, actor="bench")  # fmt: skip
        if not moved.ok:
            raise SystemExit(f"approve failed: {moved}")

    async def main() -> None:
        client = AsyncRedis.from_url(rig.redis_url)
        ledger = RequestLedger(client)
        try:
            for start in range(0, count, 64):
                async with anyio.create_task_group() as tg:
                    for i in range(start, min(count, start + 64)):
                        tg.start_soon(one, ledger, i)
        finally:
            await client.aclose()

    anyio.run(main)
    if int(rig.redis.llen(keys.WRITE_QUEUE)) != count:
        raise SystemExit("the approvals did not push one message each")
    rig.redis.rename(keys.WRITE_QUEUE, STAGED)
    return count


def run_child(rig: Rig, args_: list[str], jobs: int, push: Callable[[], object] | None) -> Sample:
    child = Child(args_, RUN_TIMEOUT_S)
    try:

        def go() -> float:
            started = time.time()
            if push is not None:
                push()
            child.say()
            return started

        def wait() -> dict[str, int]:
            child.expect("DONE")
            return {"rpush": 1} if push is not None else {}

        return rig.measure(child.process.pid, jobs, go, wait)
    finally:
        child.close()


def one_round(rig: Rig, tmp: Path, args: argparse.Namespace, signer: ApprovalSigner,
              public_key: str, python: Path | None, tag: str) -> dict[str, Sample]:  # fmt: skip
    n, slots, out = args.requests, args.concurrency, {}
    rig.reset()
    lean_messages = approved_tweets(signer, n, f"lean {tag}")
    out[LEAN] = run_child(
        rig, [sys.executable, str(HERE / "lean_consumer.py"), rig.redis_url, rig.base_url,
              str(n), str(slots), args.http],
        n, lambda: rig.redis.rpush(keys.WRITE_QUEUE, *lean_messages),
    )  # fmt: skip
    rig.reset()
    unsigned = [
        encode_write_request(
            WriteRequest(action=WriteAction.TWEET, payload={"text": f"o{tag} {i}"})
        )
        for i in range(n)
    ]
    https = ("lean", "httpx") if args.writer_http == "both" else (args.writer_http,)
    for http in https:
        # The rows of the default transport keep their names; httpx's own are marked.
        mark = "" if http == "lean" else HTTPX_MARK
        if mark:
            rig.reset()
            unsigned = [encode_write_request(WriteRequest(
                action=WriteAction.TWEET, payload={"text": f"o{tag}{http} {i}"})) for i in range(n)
            ]  # fmt: skip
        out[WRITER_OPEN + mark] = run_writer(rig, tmp, args, public_key, unsigned, False, http)
        rig.reset()
        signed = approved_tweets(signer, n, f"writer {tag}{http}")
        out[WRITER_SIGNED + mark] = run_writer(rig, tmp, args, public_key, signed, True, http)
        rig.reset()
        staged = stage_approved(rig, signer, n, f"approved {tag}{http}")
        out[WRITER_MODERATED + mark] = run_writer(rig, tmp, args, public_key, staged, True, http)
    for kind in ("arq", "saq") if python else ():
        rig.reset()
        peer = [str(python), "-c", PEER_SCRIPT, kind, rig.redis_url, rig.base_url, str(n),
                str(slots), DEFAULT_BEARER_TOKEN, args.http]  # fmt: skip
        out[f"{kind}, {slots} slots"] = run_child(rig, peer, n, None)
    return out


def report(
    rounds: list[dict[str, Sample]], ceiling: float, args: argparse.Namespace
) -> dict[str, object]:
    med = statistics.median
    names = list(rounds[0])
    rows: dict[str, dict[str, float]] = {}
    for name in names:
        samples = [r[name] for r in rounds]
        rows[name] = {
            "jobs_per_s": med(s.per_s for s in samples),
            "cpu_us": med(s.cpu_us for s in samples),
            "cmds": med(s.cmds for s in samples),
            "lua": med(s.lua / s.jobs for s in samples),
            "redis_us": med(s.redis_us for s in samples),
            "posts": min(s.posts for s in samples),
        }
    lean = rows[LEAN]["jobs_per_s"]
    print(f"\n{args.requests} jobs × {args.rounds} rounds, {args.concurrency} slots, medians")
    print(f"{'consumer':<32} {'jobs/s':>7} {'ratio':>6} {'CPU µs/job':>11} {'cmds/job':>9} "
          f"{'Lua/job':>8} {'Redis µs/job':>13} {'posts':>6}")  # fmt: skip
    for name, row in rows.items():
        print(f"{name:<32} {row['jobs_per_s']:7.1f} {row['jobs_per_s'] / lean:6.2f} "
              f"{row['cpu_us']:11.0f} {row['cmds']:9.1f} {row['lua']:8.1f} "
              f"{row['redis_us']:13.1f} {row['posts']:>6.0f}")  # fmt: skip
    fastest = max(row["jobs_per_s"] for row in rows.values())
    print(
        f"fastest consumer used {fastest / ceiling:.0%} of the fake X's ceiling ({ceiling:.0f}/s)"
    )
    for name in (row for row in names if row.startswith("writer")):
        last = rounds[-1][name]
        by = sorted(last.calls.items(), key=lambda kv: -kv[1])
        print(f"{name}: Redis commands/job by name (last round): "
              + ", ".join(f"{cmd} {calls / last.jobs:.2f}" for cmd, calls in by))  # fmt: skip
    return {"rows": rows, "ceiling": ceiling, "jobs": args.requests,
            "calls": {n: rounds[-1][n].calls for n in names if n.startswith("writer")}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=48, help="slots; the writer's max is 48")
    parser.add_argument("--venv", type=Path, help="create or reuse the arq/saq venv here")
    parser.add_argument("--no-peers", action="store_true", help="skip arq and saq")
    parser.add_argument("--latency", type=int, default=100, help="approvals per latency row")
    parser.add_argument("--ceiling-s", type=float, default=3.0)
    parser.add_argument("--http", choices=("per-slot", "shared"), default="per-slot",
                        help="the lean/arq/saq HTTP set-up: one single-connection httpx client "
                        "per slot (the writer's), or one shared client with slots + 2")  # fmt: skip
    parser.add_argument("--writer-http", choices=("lean", "httpx", "both"), default="lean",
                        help="the writer's [writer] http_transport; both = each writer row with "
                        "each, httpx's rows marked")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="also print one RESULT json line")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed")
    private, public = generate_key_pair()
    signer = ApprovalSigner(private)
    pinned = "consumer on CPU 0, Redis + fake X on CPU 1" if can_pin() else "not pinned (< 2 CPUs)"
    print(f"processes: {pinned}", flush=True)
    print(f"HTTP of lean/arq/saq: {args.http} (the writer: one 1-connection client per worker)",
          flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="twitstack-bench-") as tmp_name:
        tmp = Path(tmp_name)
        python = None
        if not args.no_peers:
            print("arq/saq venv (pip from PyPI unless reused)...", flush=True)
            python = make_venv(args.venv or tmp / "venv")
        with redis_server(cpu=SERVER_CPU) as redis_url, minimal_x() as base_url:
            rig = Rig(redis_url, base_url)
            ceiling = fake_ceiling(base_url, args.ceiling_s, args.concurrency)
            print(f"minimal fake X alone: {ceiling:.0f} req/s ({args.concurrency} raw keep-alive "
                  "connections from CPU 0)", flush=True)  # fmt: skip
            rounds = []
            for round_no in range(args.rounds):
                rounds.append(one_round(rig, tmp, args, signer, public, python, f"r{round_no}"))
                print(f"round {round_no + 1}: " + ", ".join(
                    f"{k} {v.per_s:.0f}/s" for k, v in rounds[-1].items()), flush=True)  # fmt: skip
            result = report(rounds, ceiling, args)
            rig.reset()
            daemon = WriterDaemon(rig, tmp, args.concurrency, public, True)
            try:
                latency = approval_latency(rig, signer, args.latency)
            finally:
                daemon.stop()
            for inflight, (p50, p99) in latency.items():
                print(f"approval → X's 201, {inflight:>2} in flight: p50 {p50:.1f} ms, "
                      f"p99 {p99:.1f} ms")  # fmt: skip
            result["latency_ms"] = latency
            rig.redis.close()
    if args.json:
        print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
