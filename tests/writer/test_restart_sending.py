"""Requests a killed writer left `sending` settle within seconds, not after stale_sending_s.

Real processes (`twitstack run --only writer`) against a real redis-server; the writer kills
itself with SIGKILL at a crash point, so the request is left `sending` exactly as kill -9 would.
stale_sending_s stays at its 300 s default: only the restart or the heartbeat can settle it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import SIGNER, wait_until
from tests.writer.test_crash import Writers, write_config
from twitstack.core.redis import create_redis
from twitstack.writes import keys, ledger_index
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.wire import encode_write_request

S = ModerationStatus
pytestmark = [pytest.mark.slow, pytest.mark.anyio, pytest.mark.timeout(120)]
SETTLE_WITHIN_S = 40.0  # far below stale_sending_s = 300


def _config(tmp_path: Path, server: RedisServer, sandbox: RunningSandbox, name: str) -> Path:
    path = write_config(tmp_path, server.url, sandbox.base_url, name)
    text = path.read_text().replace("stale_sending_s = 4.0", "stale_sending_s = 300.0")
    path.write_text(text)
    return path


async def _left_sending(redis: Redis, writers: Writers, name: str, crash_at: str) -> str:
    """Start `name` with a crash point, give it one tweet, wait until it killed itself."""
    request = SIGNER.approve(
        WriteRequest(action=WriteAction.TWEET, payload={"text": f"left by {crash_at}"}),
        approver="alice",
    )
    writers.start(name, crash_at)
    await redis.rpush(keys.WRITE_QUEUE, encode_write_request(request))

    async def dead() -> bool:
        return not writers.alive(name)

    await wait_until(dead, timeout_s=30, poll_s=0.05)
    assert writers.processes[name].returncode == -signal.SIGKILL
    assert (await ledger_index.counts(redis))[S.SENDING] == 1
    return request.id


async def _settled(redis: Redis, request_id: str) -> ModerationStatus:
    ledger = RequestLedger(redis)

    async def executed() -> bool:
        record = await ledger.get(request_id)
        return record is not None and record.state is S.EXECUTED

    await wait_until(executed, timeout_s=SETTLE_WITHIN_S, poll_s=0.1)
    record = await ledger.get(request_id)
    assert record is not None
    return record.state


@pytest.mark.parametrize("crash_at", ["after_sending:1", "after_x_accepted:1"])
async def test_same_consumer_id_restart_reconciles_its_own_leftovers(
    make_redis_server: Callable[..., RedisServer],
    sandbox: RunningSandbox,
    tmp_path: Path,
    crash_at: str,
) -> None:
    """Killed mid-request, restarted as the same consumer: settled at once, posted once."""
    server = make_redis_server()
    redis: Redis = create_redis(server.url)
    writers = Writers(tmp_path, {"w1": _config(tmp_path, server, sandbox, "w1")})
    try:
        request_id = await _left_sending(redis, writers, "w1", crash_at)
        writers.start("w1")
        assert await _settled(redis, request_id) is S.EXECUTED
    finally:
        writers.stop_all()
        await redis.aclose()
    assert list(sandbox.state.content.post_text_counts().values()) == [1]


async def test_another_replica_settles_leftovers_once_the_heartbeat_lapses(
    make_redis_server: Callable[..., RedisServer], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """w1 dies and never comes back; w2 settles its request after heartbeat_ttl_s."""
    server = make_redis_server()
    redis: Redis = create_redis(server.url)
    configs = {name: _config(tmp_path, server, sandbox, name) for name in ("w1", "w2")}
    writers = Writers(tmp_path, configs)
    try:
        request_id = await _left_sending(redis, writers, "w1", "after_x_accepted:1")
        writers.start("w2")
        assert await _settled(redis, request_id) is S.EXECUTED
    finally:
        writers.stop_all()
        await redis.aclose()
    assert list(sandbox.state.content.post_text_counts().values()) == [1]
