"""Users, sessions, login throttling, API keys and JWTs, below the HTTP layer."""

from __future__ import annotations

import time

import anyio
import jwt
import pytest

from tests.moderation.conftest import ManualClock
from twitstack.moderation.apikeys import ApiKeyError, ApiKeyStore
from twitstack.moderation.db import Database
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.roles import Role
from twitstack.moderation.security import LoginThrottle
from twitstack.moderation.sessions import SessionStore
from twitstack.moderation.tokens import TokenError, TokenIssuer
from twitstack.moderation.users import UserError, UserStore

pytestmark = pytest.mark.anyio
SECRET = b"s" * 64


async def test_session_idle_and_absolute_timeouts(
    db: Database, clock: ManualClock, fast_passwords: PasswordService
) -> None:
    """A session dies after the idle timeout, and after the absolute one even if used."""
    users = UserStore(db, fast_passwords, clock)
    user = await users.create("alice", "a long enough passphrase", Role.VIEWER)
    sessions = SessionStore(db, clock, idle_s=100, absolute_s=250)
    token, _ = await sessions.create(user.id)
    clock.advance(90)
    assert await sessions.resolve(token) is not None
    clock.advance(101)
    assert await sessions.resolve(token) is None  # idle too long
    token, _ = await sessions.create(user.id)
    for _ in range(5):
        clock.advance(60)
        await sessions.resolve(token)
    assert await sessions.resolve(token) is None  # 300 s > absolute 250 s


async def test_concurrent_requests_of_one_session_touch_it_once(
    db: Database, clock: ManualClock, fast_passwords: PasswordService
) -> None:
    """Each touch is an fsync'd write: twenty parallel page views must not queue twenty."""
    user = await UserStore(db, fast_passwords, clock).create("busy", "long enough pw", Role.VIEWER)
    sessions = SessionStore(db, clock, idle_s=3600, absolute_s=7200)
    token, _ = await sessions.create(user.id)
    await db.execute("CREATE TABLE touches (at REAL NOT NULL)")
    await db.execute(
        "CREATE TRIGGER count_touches AFTER UPDATE OF last_seen ON sessions"
        " BEGIN INSERT INTO touches (at) VALUES (NEW.last_seen); END"
    )
    clock.advance(60)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(sessions.resolve, token)
    assert await db.fetchval("SELECT count(*) FROM touches") == 1
    clock.advance(60)
    assert await sessions.resolve(token) is not None
    assert await db.fetchval("SELECT count(*) FROM touches") == 2


async def test_only_the_hash_of_a_session_id_is_stored(
    db: Database, clock: ManualClock, fast_passwords: PasswordService
) -> None:
    users = UserStore(db, fast_passwords, clock)
    user = await users.create("bob", "a long enough passphrase", Role.VIEWER)
    token, _ = await SessionStore(db, clock, idle_s=100, absolute_s=200).create(user.id)
    stored = await db.fetchval("SELECT id_hash FROM sessions")
    assert token not in stored
    assert len(stored) == 64


async def test_disabling_or_role_change_ends_sessions(
    db: Database, clock: ManualClock, fast_passwords: PasswordService
) -> None:
    users = UserStore(db, fast_passwords, clock)
    user = await users.create("carol", "a long enough passphrase", Role.MODERATOR)
    sessions = SessionStore(db, clock, idle_s=100, absolute_s=200)
    token, _ = await sessions.create(user.id)
    await users.set_role(user.id, Role.VIEWER)
    assert await sessions.resolve(token) is None
    token, _ = await sessions.create(user.id)
    await users.set_disabled(user.id, True)
    assert await sessions.resolve(token) is None


async def test_duplicate_and_invalid_usernames_are_refused(
    db: Database, clock: ManualClock, fast_passwords: PasswordService
) -> None:
    users = UserStore(db, fast_passwords, clock)
    await users.create("dave", "a long enough passphrase", Role.VIEWER)
    with pytest.raises(UserError, match="already exists"):
        await users.create("DAVE", "a long enough passphrase", Role.VIEWER)
    with pytest.raises(UserError, match="may only contain"):
        await users.create("dave smith", "a long enough passphrase", Role.VIEWER)


def test_throttle_limits_per_account_and_recovers(clock: ManualClock) -> None:
    """After N failures the account waits; failures age out, so there is no permanent lock."""
    throttle = LoginThrottle(clock, window_s=900, per_account=10, per_ip=100)
    for _ in range(10):
        assert throttle.acquire("alice", "10.0.0.1").allowed
    decision = throttle.acquire("Alice", "10.0.0.2")
    assert not decision.allowed
    assert 0 < decision.retry_after_s <= 901
    assert throttle.acquire("bob", "10.0.0.1").allowed  # another account, same IP
    clock.advance(901)
    assert throttle.acquire("alice", "10.0.0.1").allowed


def test_throttle_limits_per_ip(clock: ManualClock) -> None:
    throttle = LoginThrottle(clock, window_s=900, per_account=10, per_ip=20)
    for i in range(20):
        assert throttle.acquire(f"user{i}", "10.0.0.9").allowed
    assert not throttle.acquire("fresh", "10.0.0.9").allowed
    assert throttle.acquire("fresh", "10.0.0.8").allowed


def test_throttle_keys_accounts_as_the_lookup_does(clock: ManualClock) -> None:
    """Padding or case cannot reach a locked account under another key (lookup strips)."""
    throttle = LoginThrottle(clock, window_s=900, per_account=3, per_ip=100)
    for _ in range(3):
        assert throttle.acquire("victim1", "10.0.0.1").allowed
    for spelling in (" victim1", "victim1 ", "\tVICTIM1", "Victim1\n"):
        assert not throttle.acquire(spelling, "10.0.0.2").allowed, repr(spelling)


def test_success_frees_the_ip_slot_it_reserved(clock: ManualClock) -> None:
    throttle = LoginThrottle(clock, window_s=900, per_account=10, per_ip=2)
    for _ in range(5):
        decision = throttle.acquire("alice", "10.0.0.1")
        assert decision.allowed
        throttle.record_success("alice", "10.0.0.1", decision.attempt)


def test_only_the_first_refusal_per_window_is_audited(clock: ManualClock) -> None:
    """Refusals are aggregated: one audited refusal per key and window, carrying the count."""
    throttle = LoginThrottle(clock, window_s=900, per_account=1, per_ip=100)
    assert throttle.acquire("alice", "10.0.0.1").allowed
    refusals = [throttle.acquire("alice", "10.0.0.1") for _ in range(50)]
    assert [r.audit for r in refusals].count(True) == 1
    assert refusals[0].audit
    clock.advance(901)
    assert throttle.acquire("alice", "10.0.0.1").allowed
    later = throttle.acquire("alice", "10.0.0.1")
    assert later.audit
    assert later.suppressed == 49


async def test_api_keys_verify_until_revoked(db: Database, clock: ManualClock) -> None:
    await db.execute(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ('o','h','author',1)"
    )
    store = ApiKeyStore(db, clock)
    plaintext, key = await store.create(1, "ci", ["write", "read"])
    assert key.scopes == ("read", "write")
    assert plaintext not in str(await db.fetchall("SELECT * FROM api_keys"))
    found = await store.verify(plaintext)
    assert found is not None
    assert found.id == key.id
    assert await store.verify(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None
    assert await store.revoke(key.id)
    assert await store.verify(plaintext) is None
    with pytest.raises(ApiKeyError, match="unknown scope"):
        await store.create(1, "x", ["admin"])


async def test_jwt_rejects_expired_wrong_audience_none_and_forged(
    db: Database, clock: ManualClock
) -> None:
    """Only HS256 tokens for our audience, unexpired and signed with our secret, pass."""
    await db.execute(
        "INSERT INTO users (username, password_hash, role, created_at) VALUES ('o','h','author',1)"
    )
    _, key = await ApiKeyStore(db, clock).create(1, "ci", ["read"])
    wall = ManualClock(time.time())
    issuer = TokenIssuer(SECRET, audience="twitstack-api", ttl_s=60, clock=wall)
    token = issuer.issue(key)
    claims = issuer.verify(token)
    assert (claims.user_id, claims.key_id, claims.scopes) == (1, key.id, ("read",))

    wall.advance(61)
    with pytest.raises(TokenError, match="expired"):
        issuer.verify(token)
    wall.advance(-61)
    other_aud = TokenIssuer(SECRET, audience="other", ttl_s=60, clock=wall).issue(key)
    with pytest.raises(TokenError):
        issuer.verify(other_aud)
    payload = jwt.decode(token, options={"verify_signature": False})
    unsigned = jwt.encode(payload, None, algorithm="none")
    with pytest.raises(TokenError):
        issuer.verify(unsigned)
    forged = jwt.encode(payload, b"x" * 64, algorithm="HS256")
    with pytest.raises(TokenError):
        issuer.verify(forged)
    hs512 = jwt.encode(payload, SECRET, algorithm="HS512")
    with pytest.raises(TokenError):
        issuer.verify(hs512)
