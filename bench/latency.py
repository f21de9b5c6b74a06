"""Moderator approval → X's 201, as a moderator's approve does it (the ledger's `approve`).

The request is recorded pending first (as the moderation service does on intake); the clock
starts just before `RequestLedger.approve`, which moves it to approved and pushes the signed
message onto `write_queue` in one atomic step, and stops at the fake X's 201 for that text.
The moderation service's HTTP and SQLite audit are not in it (bench/moderation_load.py's
subject). With 20 in flight, 20 approvals are issued at once and all awaited before the next
batch. The first approval after start-up is a warm-up, not measured.
"""

from __future__ import annotations

import statistics
import time

import anyio
from redis.asyncio import Redis
from rig import Rig

from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import Approval, WriteAction, WriteRequest
from twitstack.writes.signing import ApprovalSigner

WAIT_S = 60.0


def quantiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


async def approve(ledger: RequestLedger, request: WriteRequest, approval: Approval,
                  started: dict[str, float]) -> None:  # fmt: skip
    started[request.payload["text"]] = time.time()
    outcome = await ledger.approve(
        request.id, approval, expected_revision=request.revision, actor="bench"
    )
    if not outcome.ok:
        raise SystemExit(f"approve failed: {outcome}")


async def wait_executed(redis: Redis, executed: str, count: int) -> None:
    """Polled: the writer has no event to wait on, and 2 ms is far below what is measured."""
    for _ in range(int(WAIT_S / 0.002)):
        if int(await redis.zcard(executed)) >= count:
            return
        await anyio.sleep(0.002)


async def _run(rig: Rig, signer: ApprovalSigner, approvals: int) -> dict[int, tuple[float, float]]:
    redis = Redis.from_url(rig.redis_url)
    ledger = RequestLedger(redis)
    executed = keys.state_index("executed")
    result: dict[int, tuple[float, float]] = {}
    # One unmeasured approval first: the first request after start-up pays one-time imports
    # (twitter_text is loaded on first use, so an idle writer does not hold it).
    warm = WriteRequest(action=WriteAction.TWEET, payload={"text": "warm-up"})
    await ledger.record(warm, actor="bench", reason="received")
    await approve(ledger, warm, signer.sign(warm, approver="bench"), {})
    issued = 1  # approvals so far, both rows: the executed index keeps them all
    with anyio.fail_after(WAIT_S):
        await wait_executed(redis, executed, issued)
    for inflight in (1, 20):
        started: dict[str, float] = {}
        for batch in range(max(1, approvals // inflight)):
            requests = [
                WriteRequest(
                    action=WriteAction.TWEET, payload={"text": f"lat{inflight} {batch} {i}"}
                )
                for i in range(inflight)
            ]
            for request in requests:
                await ledger.record(request, actor="bench", reason="received")
            signed = [(r, signer.sign(r, approver="bench")) for r in requests]
            issued += inflight
            async with anyio.create_task_group() as tg:
                for request, approval in signed:
                    tg.start_soon(approve, ledger, request, approval, started)
            with anyio.fail_after(WAIT_S):
                await wait_executed(redis, executed, issued)
        times = rig.fake_times()
        result[inflight] = quantiles([(times[t] - s) * 1000 for t, s in started.items()])
    await redis.aclose()
    return result


def approval_latency(
    rig: Rig, signer: ApprovalSigner, approvals: int
) -> dict[int, tuple[float, float]]:
    return anyio.run(_run, rig, signer, approvals)
