"""CPU per bearer-token POST: httpx's default transport beside the writer's LeanTransport.

    python bench/lean_http.py [--posts 5000] [--rounds 5] [--slots 1 8] [--json]

Both run the writer's own call (`XApiClient.execute` of a tweet with a bearer token, its fast
path) against the minimal fake X (bench/minimal_x.py, pinned to the server CPU) from this
process (pinned to the consumer CPU), each slot with its own one-connection client as the
writer's workers have. The transports alternate round by round, so a machine busy with other
work slows both alike. CPU = this process's user + system time over the round, per POST.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import anyio
import httpx
from common import pin_to
from rig import CONSUMER_CPU, minimal_x

from twitstack.writer.lean_transport import LeanTransport
from twitstack.writer.outcome import OutcomeKind
from twitstack.writer.x_calls import tweet_call
from twitstack.writer.xapi_client import BearerAuth, XApiClient

TIMEOUT = httpx.Timeout(20.0, connect=5.0)  # the writer's defaults


def client(kind: str, context: object) -> httpx.AsyncClient:
    transport = LeanTransport(context) if kind == "lean" else None  # type: ignore[arg-type]
    return httpx.AsyncClient(
        timeout=TIMEOUT, limits=httpx.Limits(max_connections=1), transport=transport,
        verify=context, trust_env=False,  # type: ignore[arg-type]
    )  # fmt: skip


async def one_round(kind: str, base_url: str, posts: int, slots: int, tag: str) -> float:
    """CPU µs per POST of `posts` tweets over `slots` one-connection clients."""
    context = httpx.create_ssl_context()
    auth = BearerAuth("bench-token")
    async with anyio.create_task_group() as tasks:
        clients = [client(kind, context) for _ in range(slots)]
        for http in clients:  # connect and warm up outside the measurement
            reply = await XApiClient(http, base_url=base_url).execute(
                tweet_call(f"warm {tag}"), auth=auth, auth_kind="oauth2"
            )
            assert reply.outcome.kind is OutcomeKind.SUCCESS, reply.outcome
        per_slot = posts // slots
        started = os.times()

        async def slot(http: httpx.AsyncClient, me: int) -> None:
            x = XApiClient(http, base_url=base_url)
            for i in range(per_slot):
                reply = await x.execute(
                    tweet_call(f"{tag} {me} {i}"), auth=auth, auth_kind="oauth2"
                )
                if reply.outcome.kind is not OutcomeKind.SUCCESS:
                    raise SystemExit(f"{kind}: {reply.outcome}")

        for me, http in enumerate(clients):
            tasks.start_soon(slot, http, me)
    ended = os.times()
    for http in clients:
        await http.aclose()
    cpu = (ended.user - started.user) + (ended.system - started.system)
    return cpu / (per_slot * slots) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pin = pin_to(CONSUMER_CPU)
    if pin is not None:
        pin()
    results: dict[str, dict[str, float]] = {}
    with minimal_x() as base_url:
        for slots in args.slots:
            samples: dict[str, list[float]] = {"httpx": [], "lean": []}
            for r in range(args.rounds):
                for kind in ("httpx", "lean") if r % 2 == 0 else ("lean", "httpx"):
                    tag = f"{kind} {slots} {r} {time.time()}"
                    samples[kind].append(
                        anyio.run(one_round, kind, base_url, args.posts, slots, tag)
                    )
            med = {kind: statistics.median(values) for kind, values in samples.items()}
            results[f"{slots} slots"] = med
            print(
                f"{slots} slot(s), {args.posts} POSTs x {args.rounds} rounds, median CPU µs/POST:"
                f" httpx {med['httpx']:.0f}, lean {med['lean']:.0f}"
                f" (−{med['httpx'] - med['lean']:.0f} µs, {med['lean'] / med['httpx']:.0%});"
                f" rounds httpx {[round(v) for v in samples['httpx']]},"
                f" lean {[round(v) for v in samples['lean']]}"
            )
    if args.json:
        print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
