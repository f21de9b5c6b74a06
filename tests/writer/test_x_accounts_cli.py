"""`twitstack x-accounts connect|list|disconnect` as a real process against the fake X."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from twitstack.core.sealing import SealingKeyRing, generate_key_ring
from twitstack.sandbox.xapi.config import DEFAULT_CLIENT_ID, Endpoint, FaultKind
from twitstack.sandbox.xapi.faults import ScriptEntry
from twitstack.writes import keys
from twitstack.writes.token_store import SEALING_KEYS_SECRET, SealedTokenStore

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]
REDIRECT = "http://127.0.0.1:9/accounts/x/callback"


def config_file(tmp_path: Path, redis_url: str, sandbox: RunningSandbox) -> Path:
    path = tmp_path / "twitstack.toml"
    path.write_text(
        f'env = "dev"\nredis_url = "{redis_url}"\ndata_dir = "{tmp_path / "data"}"\n'
        "[writer]\n"
        f'x_api_base_url = "{sandbox.base_url}"\n'
        f'x_authorize_url = "{sandbox.base_url}/i/oauth2/authorize"\n'
        f'oauth2_client_id = "{DEFAULT_CLIENT_ID}"\n'
        f'oauth2_redirect_uri = "{REDIRECT}"\n'
    )
    return path


def env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        SEALING_KEYS_SECRET: RING,
        "USER": "tester",
    }


RING = generate_key_ring("k1")


async def cli(config: Path, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "twitstack", "x-accounts", *args, "--config", str(config)],
            input=stdin, env=env(), check=False, cwd=REPO,
        )  # fmt: skip
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def connect_by_paste(config: Path, *extra: str) -> tuple[int, str, str]:
    """Run `connect`, read the URL it prints, consent at the fake, paste the redirect back."""
    command = [sys.executable, "-m", "twitstack", "x-accounts", "connect", "brand", *extra,
               "--config", str(config)]  # fmt: skip
    with anyio.fail_after(60):
        async with await anyio.open_process(command, env=env(), cwd=REPO) as process:
            assert process.stdout is not None
            assert process.stdin is not None
            seen = b""
            for _ in range(200):
                seen += await process.stdout.receive()
                if b"\nhttp" in seen and seen.rstrip(b" ").endswith(b"\n"):
                    break
            url = next(line for line in seen.decode().splitlines() if line.startswith("http"))
            async with httpx.AsyncClient() as browser:
                location = (await browser.get(url)).headers["location"]
            await process.stdin.send(location.encode() + b"\n")
            rest = b""
            async for chunk in process.stdout:
                rest += chunk
            await process.wait()
            assert process.stderr is not None
            err = b""
            async for chunk in process.stderr:
                err += chunk
            return process.returncode or 0, (seen + rest).decode(), err.decode()


async def test_connect_list_disconnect(
    tmp_path: Path, redis_url: str, sandbox: RunningSandbox
) -> None:
    """The headless flow: paste the redirect; list shows the handle; disconnect revokes."""
    config = config_file(tmp_path, redis_url, sandbox)
    code, out, err = await connect_by_paste(config, "--scope", "posting", "--scope", "dms")
    assert code == 0, err
    assert "connected @twitstack_demo (user 1000) as brand" in out
    assert "dm.write" in out
    code, out, err = await cli(config, "list")
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("brand"))
    for field in ("@twitstack_demo", "1000", "oauth2-pkce", "tweet.write", "ok"):
        assert field in row
    code, out, err = await cli(config, "disconnect", "@twitstack_demo")
    assert code == 0, err
    assert "revoked at X" in out
    code, out, _ = await cli(config, "list")
    assert "@twitstack_demo" not in out


async def test_pasting_garbage_fails_clearly(
    tmp_path: Path, redis_url: str, sandbox: RunningSandbox
) -> None:
    """A pasted URL without our state is refused with a readable message, exit 1."""
    config = config_file(tmp_path, redis_url, sandbox)
    code, _, err = await cli(config, "connect", "brand", stdin=b"https://example.test/?code=x\n")
    assert code == 1
    assert "unknown, expired or was already used" in err
    assert "Traceback" not in err


async def test_connect_with_listen_receives_the_redirect_on_loopback(
    tmp_path: Path, redis_url: str, sandbox: RunningSandbox
) -> None:
    """--listen PORT: X's redirect lands on the command's own loopback callback."""
    from tests.conftest import free_port

    config = config_file(tmp_path, redis_url, sandbox)
    port = free_port()
    command = [sys.executable, "-m", "twitstack", "x-accounts", "connect", "brand",
               "--listen", str(port), "--config", str(config)]  # fmt: skip
    with anyio.fail_after(60):
        async with await anyio.open_process(command, env=env(), cwd=REPO) as process:
            assert process.stdout is not None
            seen = b""
            for _ in range(200):
                seen += await process.stdout.receive()
                if b"Waiting for X's redirect" in seen:
                    break
            url = next(line for line in seen.decode().splitlines() if line.startswith("http"))
            assert f"redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback" in url
            async with httpx.AsyncClient() as browser:
                location = (await browser.get(url)).headers["location"]
                landed = await browser.get(location)
            assert "return to the terminal" in landed.text
            rest = b""
            async for chunk in process.stdout:
                rest += chunk
            assert await process.wait() == 0
    assert "connected @twitstack_demo (user 1000) as brand" in rest.decode()


async def stored_refresh_token(redis_url: str) -> str:
    async def ring() -> SealingKeyRing:
        return SealingKeyRing.parse(RING, source="test")

    redis = Redis.from_url(redis_url)
    try:
        found = await SealedTokenStore(redis, ring).read("brand")
        assert found is not None
        return found[0].refresh_token
    finally:
        await redis.aclose()


async def refresh_status(sandbox: RunningSandbox, refresh_token: str) -> int:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sandbox.base_url}/2/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                  "client_id": DEFAULT_CLIENT_ID},
        )  # fmt: skip
    return response.status_code


async def test_reconnect_revokes_the_old_grant_or_says_it_could_not(
    tmp_path: Path, redis_url: str, sandbox: RunningSandbox
) -> None:
    """`connect NAME` again: the replaced refresh token is refused by X afterwards. When X
    answers 503 to the revoke, the reconnect still succeeds (exit 0) and stderr says so."""
    config = config_file(tmp_path, redis_url, sandbox)
    code, _, err = await connect_by_paste(config)
    assert code == 0, err
    first = await stored_refresh_token(redis_url)
    code, out, err = await connect_by_paste(config)
    assert code == 0, err
    assert "reconnected @twitstack_demo (user 1000) as brand" in out
    assert "not revoked" not in err
    second = await stored_refresh_token(redis_url)
    assert await refresh_status(sandbox, first) == 400

    sandbox.state.faults.script(
        Endpoint.OAUTH2_REVOKE, [ScriptEntry(fault=FaultKind.ERROR_503)] * 2
    )
    code, out, err = await connect_by_paste(config)
    assert code == 0, err
    assert "reconnected @twitstack_demo" in out
    assert "x-accounts connect: old grant not revoked: refresh token: X answered 503" in err
    assert err.rstrip().endswith("revoke it in the account's X settings")
    third = await stored_refresh_token(redis_url)
    assert third not in (first, second)
    # The revoke did not happen: X still honours the replaced token (spent here once).
    assert await refresh_status(sandbox, second) == 200
    redis = Redis.from_url(redis_url)
    try:
        entry = await redis.xrevrange(keys.X_ACCOUNTS_AUDIT, count=1)
    finally:
        await redis.aclose()
    assert b'"event": "old_grant_not_revoked"' in entry[0][1][b"entry"]
