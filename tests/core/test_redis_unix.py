"""A redis-server on a unix socket: `unix://` URLs open the shared pool."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from twitstack.core.redis import open_redis


@pytest.fixture
def unix_redis(tmp_path: Path) -> Iterator[Path]:
    """A redis-server listening only on a unix socket in a temporary directory."""
    socket_path = tmp_path / "redis.sock"
    binary = shutil.which("redis-server")
    assert binary is not None
    args = [
        binary, "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
        "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
    ]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not socket_path.exists() and time.monotonic() < deadline:
            assert process.poll() is None, "redis-server exited before opening its socket"
            time.sleep(0.02)
        yield socket_path
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.anyio
async def test_unix_socket_url_opens_the_pool(unix_redis: Path) -> None:
    """unix:// works end to end (TCP-only options such as keepalive are not passed there)."""
    with anyio.fail_after(20):
        async with open_redis(f"unix://{unix_redis}?db=0", startup_timeout_s=5) as redis:
            await redis.set("unix-check", "ok")
            assert await redis.get("unix-check") == b"ok"
