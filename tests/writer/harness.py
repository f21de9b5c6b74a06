"""A running WriterService against the fake X API and a real Redis, for end-to-end tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import (
    DEFAULT_BEARER_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_REFRESH_TOKEN,
)
from twitstack.writer.service import WriterService
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.ledger_types import LedgerRecord
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.signing import ApprovalSigner, generate_key_pair
from twitstack.writes.wire import encode_write_request

S_SENDING, S_UNKNOWN = ModerationStatus.SENDING, ModerationStatus.UNKNOWN

SECRETS = {"DEMO_ACCESS": DEFAULT_BEARER_TOKEN, "DEMO_REFRESH": DEFAULT_REFRESH_TOKEN}
PRIVATE_KEY, PUBLIC_KEY = generate_key_pair()
SIGNER = ApprovalSigner(PRIVATE_KEY)


def writer_settings(
    make_settings: Callable[..., Settings], base_url: str, **writer: Any
) -> Settings:
    """Settings with one OAuth2 account ("default", user 1000 at the fake) and fast loops."""
    section: dict[str, Any] = {
        "x_api_base_url": base_url,
        "accounts": [
            {
                "name": "default",
                "user_id": "1000",
                "client_id": DEFAULT_CLIENT_ID,
                "access_token_secret": "DEMO_ACCESS",
                "refresh_token_secret": "DEMO_REFRESH",
            }
        ],
        "approval_public_keys": [PUBLIC_KEY],
        "metrics_port": None,
        "concurrency": 4,
        "schedule_poll_s": 0.05,
        "reconcile_interval_s": 0.1,
        "reconcile_grace_s": 0.3,
        "heartbeat_interval_s": 0.5,
        "heartbeat_ttl_s": 2.0,
        "recovery_interval_s": 0.5,
        "take_timeout_s": 0.2,
        "read_timeout_s": 2.0,
        "rate_limit_margin_s": 0.0,
        "rate_limit_jitter_s": 0.0,
    }
    section.update(writer)
    return make_settings(writer=section)


def tweet(text: str, **fields: Any) -> WriteRequest:
    return WriteRequest(action=WriteAction.TWEET, payload={"text": text}, **fields)


def approved(request: WriteRequest) -> WriteRequest:
    return SIGNER.approve(request, approver="alice")


@dataclass
class WriterHarness:
    """The service under test plus handles to inspect it."""

    service: WriterService
    redis: Redis
    sandbox: RunningSandbox
    ledger: RequestLedger

    async def push(self, *requests: WriteRequest) -> None:
        for request in requests:
            await self.redis.rpush(keys.WRITE_QUEUE, encode_write_request(request))

    async def push_raw(self, raw: bytes) -> None:
        await self.redis.rpush(keys.WRITE_QUEUE, raw)

    async def state(self, request_id: str) -> ModerationStatus | None:
        record = await self.ledger.get(request_id)
        return None if record is None else record.state

    async def record(self, request_id: str) -> LedgerRecord:
        record = await self.ledger.get(request_id)
        assert record is not None, f"request {request_id} is not in the ledger"
        return record

    async def wait_states(
        self, ids: list[str], states: set[ModerationStatus], *, timeout_s: float = 20
    ) -> None:
        """Wait until every request is in one of `states`; on timeout, say which are not."""
        behind: dict[str, ModerationStatus | None] = {}

        async def done() -> bool:
            records = {r.request.id: r.state for r in await self.ledger.get_many(ids)}
            behind.clear()
            behind.update({i: records.get(i) for i in ids if records.get(i) not in states})
            return not behind

        try:
            await wait_until(done, timeout_s=timeout_s)
        except TimeoutError:
            sample = dict(list(behind.items())[:5])
            raise AssertionError(f"{len(behind)} requests not in {states}: {sample}") from None

    async def dead_letters(self) -> list[dict[str, Any]]:
        return [json.loads(item) for item in await self.redis.lrange(keys.DEAD_LETTER, 0, -1)]

    def metric(self, name: str, **labels: str) -> float:
        value = self.service.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


async def left_unknown(redis: Redis, requests: list[WriteRequest]) -> None:
    """Record `requests` as a writer that died mid-send leaves them: `unknown`, listed in this
    order (the reconciler takes them oldest first)."""
    ledger = RequestLedger(redis)
    for order, request in enumerate(requests):
        await ledger.record(request, actor="moderation")
        assert (await ledger.mark_sending(request.id, actor="writer:gone")).ok
        moved = await ledger.transition(
            request.id, S_UNKNOWN, from_states=[S_SENDING], actor="writer:gone", reason="test"
        )
        assert moved.ok
        await redis.zadd(keys.state_index(S_UNKNOWN), {request.id: order + 1})


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, timeout_s: float = 20, poll_s: float = 0.02
) -> None:
    """Poll `condition` until true, failing after `timeout_s`."""
    with anyio.fail_after(timeout_s):
        for _ in range(int(timeout_s / poll_s) + 1):
            if await condition():
                return
            await anyio.sleep(poll_s)
    raise TimeoutError(f"condition still false after {timeout_s} s")


@asynccontextmanager
async def running_writer(
    settings: Settings,
    redis: Redis,
    sandbox: RunningSandbox,
    *,
    clock: Callable[[], float] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> AsyncIterator[WriterHarness]:
    """Run a WriterService until the block ends, then stop it gracefully."""
    known = {**SECRETS, **(secrets or {})}

    async def lookup(name: str) -> str | None:
        if name == "RAISE":
            raise RuntimeError("a bug in a secret backend")
        return known.get(name)

    service = WriterService(settings, redis, secret=lookup, clock=clock or sandbox.state.clock.now)
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(10):
            await tg.start(lambda task_status: service.run(task_status=task_status))
        try:
            yield WriterHarness(service, redis, sandbox, RequestLedger(redis))
        finally:
            service.request_stop()
