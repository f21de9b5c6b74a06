"""A redis-server loaded with the shipped ACL file (deploy/redis/users.acl), passwords filled in."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.conftest import free_port
from twitstack.ops.redis_acl import all_users, placeholder

REPO = Path(__file__).resolve().parents[2]
SHIPPED_ACL = REPO / "deploy" / "redis" / "users.acl"
START_TIMEOUT_S = 10.0


def password(user: str) -> str:
    return f"pw-{user}-0123456789"


@dataclass(frozen=True)
class AclRedis:
    """Where the server listens; `url(user)` logs in as that ACL user."""

    port: int
    directory: Path

    def url(self, user: str) -> str:
        return f"redis://{user}:{password(user)}@127.0.0.1:{self.port}/0"

    def client(self, user: str) -> redis.Redis:
        return redis.Redis.from_url(self.url(user), socket_timeout=10)


@contextmanager
def acl_redis(directory: Path) -> Iterator[AclRedis]:
    """Start redis-server with the shipped ACL file (placeholders replaced); stop it after."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    directory.mkdir(parents=True, exist_ok=True)
    text = SHIPPED_ACL.read_text()
    for user in all_users():
        assert placeholder(user) in text, f"{SHIPPED_ACL} has no line for {user}"
        text = text.replace(placeholder(user), password(user))
    aclfile = directory / "users.acl"
    aclfile.write_text(text)
    port = free_port()
    args = [
        binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
        "--dir", str(directory), "--aclfile", str(aclfile),
    ]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = AclRedis(port, directory)
    admin = server.client("twitstack-admin")
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                admin.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"redis-server with {aclfile} did not start") from None
                time.sleep(0.02)
        yield server
    finally:
        admin.close()
        process.terminate()
        process.wait(timeout=10)
