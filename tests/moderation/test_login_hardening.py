"""Login throttling under attack: key normalisation, concurrency, bounded argon2 and audit."""

from __future__ import annotations

import anyio
import httpx
import pytest

from tests.moderation.harness import PASSWORD, Harness, csrf_from
from twitstack.moderation.roles import Role

pytestmark = pytest.mark.anyio


async def _attempt(client: httpx.AsyncClient, token: str, username: str, password: str) -> int:
    response = await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )
    return response.status_code


async def test_padded_username_does_not_bypass_a_locked_account(mod: Harness) -> None:
    """`" victim1"` finds the same user, so it is throttled as that user (argon2 not reached)."""
    await mod.add_user("victim1", Role.VIEWER)
    async with mod.client() as client:
        token = csrf_from((await client.get("/login")).text)
        for _ in range(mod.deps.settings.login_max_failures_per_account):
            assert await _attempt(client, token, "victim1", "wrong-password!") == 401
        before = mod.deps.passwords.verifications
        padded = [
            await _attempt(client, token, spelling, "wrong-password!")
            for spelling in (" victim1", "victim1 ", "\tvictim1", "VICTIM1")
        ]
        right_password = await _attempt(client, token, " victim1", PASSWORD)
    assert padded == [429, 429, 429, 429]
    assert right_password == 429
    assert mod.deps.passwords.verifications == before


async def test_concurrent_wrong_passwords_reach_argon2_at_most_the_limit(mod: Harness) -> None:
    """40 wrong passwords at once: the check-and-record is atomic, and argon2 runs bounded."""
    await mod.add_user("alice", Role.VIEWER)
    limit = mod.deps.settings.login_max_failures_per_account
    before = mod.deps.passwords.verifications
    statuses: list[int] = []
    async with mod.client() as client:
        token = csrf_from((await client.get("/login")).text)

        async def one() -> None:
            statuses.append(await _attempt(client, token, "alice", "wrong-password!"))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(40):
                    tg.start_soon(one)
    assert mod.deps.passwords.verifications - before == limit
    assert sorted(statuses) == [401] * limit + [429] * (40 - limit)
    assert 1 <= mod.deps.passwords.peak_concurrency <= 2


async def test_throttled_logins_write_one_audit_row_per_window(mod: Harness) -> None:
    """A flood of throttled attempts is aggregated, not one fsync'd row per request."""
    await mod.add_user("alice", Role.VIEWER)
    async with mod.client() as client:
        token = csrf_from((await client.get("/login")).text)
        statuses = [await _attempt(client, token, "alice", "wrong-password!") for _ in range(60)]
        assert statuses.count(429) == 50
        assert await mod.deps.audit.count(action="login.throttled") == 1
        mod.clock.advance(mod.deps.settings.login_window_s + 1)
        for _ in range(11):
            await _attempt(client, token, "alice", "wrong-password!")
    assert await mod.deps.audit.count(action="login.throttled") == 2
    newest = await mod.deps.audit.page(limit=1, offset=0, action="login.throttled")
    assert newest[0].detail == {"suppressed_since_last": 49}
    assert newest[0].ip == "127.0.0.1"


def _client_at(mod: Harness, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=mod.app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


async def test_bad_api_keys_from_one_client_do_not_block_others(mod: Harness) -> None:
    """The key exchange is throttled per key prefix and per client, not globally."""
    await mod.add_user("bot", Role.AUTHOR)
    plaintext, key = await mod.deps.apikeys.create(mod.users["bot"], "ci", ("read",))
    wrong_same_prefix = f"tsk_{key.prefix}_{'x' * 43}"
    async with _client_at(mod, "192.0.2.1") as attacker, _client_at(mod, "192.0.2.2") as good:
        for i in range(12):
            await attacker.post("/api/auth/token", json={"api_key": f"tsk_{i:012x}_{'y' * 43}"})
        fine = await good.post("/api/auth/token", json={"api_key": plaintext})
        # Guessing at one key from many clients throttles that key only.
        for i in range(10):
            async with _client_at(mod, f"198.51.100.{i}") as guesser:
                await guesser.post("/api/auth/token", json={"api_key": wrong_same_prefix})
        guessed = await good.post("/api/auth/token", json={"api_key": plaintext})
        other_client_other_key = await attacker.post(
            "/api/auth/token", json={"api_key": "tsk_0123456789ab_" + "z" * 43}
        )
    assert fine.status_code == 200, fine.text
    assert guessed.status_code == 429
    assert other_client_other_key.status_code == 401


async def test_a_burst_of_valid_key_exchanges_is_never_throttled(mod: Harness) -> None:
    """Many workers sharing one key may exchange it at once: only failures count."""
    await mod.add_user("bot", Role.AUTHOR)
    plaintext, _ = await mod.deps.apikeys.create(mod.users["bot"], "ci", ("read",))
    statuses: list[int] = []
    async with mod.client() as client:

        async def one() -> None:
            response = await client.post("/api/auth/token", json={"api_key": plaintext})
            statuses.append(response.status_code)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(30):
                    tg.start_soon(one)
    assert statuses == [200] * 30
