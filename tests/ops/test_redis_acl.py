"""The shipped Redis ACL on a real redis-server: each role can do its job and nothing else."""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import redis
from redis.exceptions import NoPermissionError, ResponseError

from tests.ops.acl_server import REPO, SHIPPED_ACL, AclRedis, acl_redis
from twitstack.core.redis import create_redis, wait_for_redis
from twitstack.ops.queue_tools import enqueue
from twitstack.ops.redis_acl import ROLES, SCRAPER_PATTERN, render_acl
from twitstack.scraper.lease import lease_key
from twitstack.writes import keys

REQUEST = keys.request("r1")
TOKEN = keys.sealed_oauth2_tokens("default")
PUBLIC_TOKEN = keys.oauth2_tokens("default")
STORED = {
    REQUEST: {"state": "rejected", "request": '{"text": "withdrawn"}', "not_before": "9e9"},
    PUBLIC_TOKEN: {"expires_at": "1900000000.0", "version": "1"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclRedis]:
    with acl_redis(tmp_path_factory.mktemp("acl-redis")) as running:
        yield running


@pytest.fixture
def admin(server: AclRedis) -> Iterator[redis.Redis]:
    """Full access, to seed what the attacks aim at and to check it afterwards."""
    client = server.client("twitstack-admin")
    client.flushall()
    for key, fields in STORED.items():
        client.hset(key, mapping=fields)
    client.set(TOKEN, "ts1.k1.sealed")
    client.rpush(keys.WRITE_QUEUE, b"first")
    client.rpush(keys.DEAD_LETTER, b"dead")
    client.zadd(keys.state_index("rejected"), {"r1": 1})
    client.xadd(keys.EVENTS, {"id": "r1", "state": "rejected"})
    yield client
    client.close()


def assert_untouched(admin: redis.Redis) -> None:
    for key, fields in STORED.items():
        assert {k.decode(): v.decode() for k, v in admin.hgetall(key).items()} == fields
    assert admin.get(TOKEN) == b"ts1.k1.sealed"
    assert admin.lrange(keys.WRITE_QUEUE, 0, 0) == [b"first"]
    assert admin.lrange(keys.DEAD_LETTER, 0, -1) == [b"dead"]
    assert admin.xlen(keys.EVENTS) == 1
    assert admin.zrange(keys.state_index("approved"), 0, -1) == []


def test_shipped_file_is_the_template() -> None:
    """deploy/redis/users.acl is exactly what `twitstack redis-acl --template` prints."""
    printed = subprocess.run(
        [sys.executable, "-m", "twitstack", "redis-acl", "--template"],
        capture_output=True, check=True, cwd=REPO, timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert printed.stdout.decode() == SHIPPED_ACL.read_text()


def test_generated_passwords_are_fresh_and_never_the_placeholders(tmp_path: Path) -> None:
    """Each run prints new random passwords; stderr names the URL each role uses."""
    runs = [
        subprocess.run(
            [sys.executable, "-m", "twitstack", "redis-acl", "--host", "db:6379"],
            capture_output=True,
            check=True,
            cwd=tmp_path,
            timeout=60,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        )
        for _ in range(2)
    ]
    first, second = (run.stdout.decode() for run in runs)
    assert first != second
    assert "REPLACE-" not in first
    assert len(first.splitlines()) == len(ROLES) + 2
    for role in ROLES:
        assert f"redis://{role.user}:" in runs[0].stderr.decode()
    assert "@db:6379/0" in runs[0].stderr.decode()


def test_scraper_leases_fall_under_the_scraper_pattern() -> None:
    assert lease_key("job-1").startswith(SCRAPER_PATTERN.rstrip("*"))


def test_template_renders_every_role() -> None:
    text = render_acl({user: "x" for user in [r.user for r in ROLES] + ["twitstack-admin"]})
    assert text.startswith("user default off ")


@pytest.mark.anyio
async def test_producer_enqueues_through_twitstack_code(
    server: AclRedis, admin: redis.Redis
) -> None:
    """`twitstack enqueue`'s path (wait for Redis with PING, then RPUSH) works as the producer."""
    url = server.url("twitstack-producer")
    client = create_redis(url, max_connections=2)
    try:
        with anyio.fail_after(10):
            await wait_for_redis(client, url, timeout_s=5)
            assert await enqueue(client, b'{"x": 1}') == 2
    finally:
        await client.aclose()
    assert admin.lrange(keys.WRITE_QUEUE, 0, -1) == [b"first", b'{"x": 1}']


FUNCTION = "#!lua name=x\nredis.register_function('f', function() return 1 end)"
# Every attack of issue 10 (and the obvious others) as one command each.
PRODUCER_ATTACKS: list[tuple[str, tuple[str | bytes, ...]]] = [
    ("swap the text of a request at click time", ("HSET", REQUEST, "request", '{"text": "other"}')),
    ("flip a rejected request to approved", ("HSET", REQUEST, "state", "approved")),
    ("strip not_before", ("HDEL", REQUEST, "not_before")),
    ("delete an executed request to replay it", ("DEL", REQUEST)),
    ("expire a request early", ("EXPIRE", REQUEST, "1")),
    ("read a request", ("HGETALL", REQUEST)),
    ("read the sealed token", ("GET", TOKEN)),
    ("read the token's public hash", ("HGETALL", PUBLIC_TOKEN)),
    ("overwrite the token", ("SET", TOKEN, "mine")),
    ("index a request as approved", ("ZADD", keys.state_index("approved"), "1", "r1")),
    ("schedule a request", ("ZADD", keys.SCHEDULE, "1", "r1")),
    ("forge a state event", ("XADD", keys.EVENTS, "*", "id", "r1", "state", "approved")),
    ("set a tombstone", ("SET", "writes:tombstone:r1", "x")),
    ("delete a tombstone to replay a finished request", ("DEL", keys.tombstone("r1"))),
    ("unspend an approval", ("DEL", keys.spent_approval("ab" * 16))),
    ("write any other ledger key", ("SET", "writes:anything", "x")),
    ("jump the queue", ("LPUSH", keys.WRITE_QUEUE, "x")),
    ("replace a queued message", ("LSET", keys.WRITE_QUEUE, "0", "x")),
    ("remove a queued message", ("LREM", keys.WRITE_QUEUE, "0", "first")),
    ("take a queued message", ("LPOP", keys.WRITE_QUEUE)),
    ("move a message to a processing list", (
        "LMOVE", keys.WRITE_QUEUE, keys.processing_list("c"), "LEFT", "RIGHT")),
    ("read the queue", ("LRANGE", keys.WRITE_QUEUE, "0", "-1")),
    ("push to a processing list", ("RPUSH", keys.processing_list("c"), "x")),
    ("push to the dead letters", ("RPUSH", keys.DEAD_LETTER, "x")),
    ("push to another list", ("RPUSH", "other", "x")),
    ("run a script", ("EVAL", "return redis.call('DEL', KEYS[1])", "1", REQUEST)),
    ("run a read-only script", ("EVAL_RO", "return 1", "0")),
    ("load a script", ("SCRIPT", "LOAD", "return 1")),
    ("load a function", ("FUNCTION", "LOAD", FUNCTION)),
    ("call a function", ("FCALL", "f", "0")),
    ("open a transaction", ("MULTI",)),
    ("flush everything", ("FLUSHALL",)),
    ("flush the database", ("FLUSHDB",)),
    ("reconfigure", ("CONFIG", "SET", "appendonly", "no")),
    ("read the config", ("CONFIG", "GET", "*")),
    ("list keys", ("KEYS", "*")),
    ("scan keys", ("SCAN", "0")),
    ("dump a key", ("DUMP", keys.WRITE_QUEUE)),
    ("rename a key", ("RENAME", keys.WRITE_QUEUE, "gone")),
    ("copy a key", ("COPY", keys.WRITE_QUEUE, "mine")),
    ("watch the traffic", ("MONITOR",)),
    ("list clients", ("CLIENT", "LIST")),
    ("change users", ("ACL", "SETUSER", "twitstack-producer", "+@all")),
    ("publish", ("PUBLISH", "c", "x")),
    ("shut down", ("SHUTDOWN", "NOSAVE")),
    ("replicate elsewhere", ("REPLICAOF", "127.0.0.1", "1")),
    ("server info", ("INFO",)),
]  # fmt: skip


@pytest.mark.parametrize(
    "command", [c for _, c in PRODUCER_ATTACKS], ids=[name for name, _ in PRODUCER_ATTACKS]
)
def test_producer_can_do_nothing_but_rpush(
    server: AclRedis, admin: redis.Redis, command: tuple[str | bytes, ...]
) -> None:
    """Redis refuses every attack of issue 10 made with the producer's credentials."""
    producer = server.client("twitstack-producer")
    try:
        with pytest.raises(NoPermissionError):
            producer.execute_command(*command)
    finally:
        producer.close()
    assert_untouched(admin)


REFUSED = r"NOPERM|no permissions|user executing the script can't"
# Per role: things it must not do, though its own work needs neighbouring rights.
ROLE_REFUSALS: list[tuple[str, str, tuple[str, ...]]] = [
    # Moderation reads and writes the sealed pairs: it connects and disconnects X accounts.
    ("twitstack-moderation", "read the scraper's leases", ("GET", lease_key("job"))),
    ("twitstack-moderation", "write the writer's account state",
     ("DEL", keys.account_paused("default"))),
    ("twitstack-moderation", "take from a processing list",
     ("LPOP", keys.processing_list("c"))),
    ("twitstack-moderation", "flush everything", ("FLUSHALL",)),
    ("twitstack-moderation", "load a function", ("FUNCTION", "LOAD", FUNCTION)),
    ("twitstack-ops", "write the ledger", ("HSET", REQUEST, "state", "approved")),
    ("twitstack-ops", "push onto the queue", ("RPUSH", keys.WRITE_QUEUE, "x")),
    ("twitstack-ops", "read the sealed token", ("GET", TOKEN)),
    ("twitstack-ops", "run a script", ("EVAL", "return 1", "0")),
    ("twitstack-ops", "list keys", ("KEYS", "*")),
    ("twitstack-scraper", "read the queue", ("LRANGE", keys.WRITE_QUEUE, "0", "-1")),
    ("twitstack-scraper", "write the ledger", ("HSET", REQUEST, "state", "approved")),
    ("twitstack-scraper", "write the ledger from a script",
     ("EVAL", f"return redis.call('HSET', '{REQUEST}', 'state', 'approved')", "0")),
    ("twitstack-scraper", "read the sealed token", ("GET", TOKEN)),
    ("twitstack-notifier", "write the ledger", ("HSET", REQUEST, "state", "approved")),
    ("twitstack-notifier", "write the ledger from a script",
     ("EVAL", f"return redis.call('HSET', '{REQUEST}', 'state', 'approved')", "0")),
    ("twitstack-notifier", "push onto the queue", ("RPUSH", keys.WRITE_QUEUE, "x")),
    ("twitstack-notifier", "read the sealed token", ("GET", TOKEN)),
    ("twitstack-notifier", "write the events", ("XADD", keys.EVENTS, "*", "id", "r1")),
    ("twitstack-ops", "retry a notification dead letter", ("LPOP", keys.NOTIFY_DEAD)),
    ("twitstack-writer", "flush everything", ("FLUSHALL",)),
    ("twitstack-writer", "reconfigure", ("CONFIG", "SET", "appendonly", "no")),
    ("twitstack-writer", "list keys", ("KEYS", "*")),
    ("twitstack-writer", "touch keys outside twitstack's", ("SET", "other", "x")),
    ("twitstack-writer", "change users", ("ACL", "SETUSER", "twitstack-writer", "+@all")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("user", "command"),
    [(u, c) for u, _, c in ROLE_REFUSALS],
    ids=[f"{u.removeprefix('twitstack-')}: {what}" for u, what, _ in ROLE_REFUSALS],
)
def test_each_role_is_refused_outside_its_keys_and_commands(
    server: AclRedis, admin: redis.Redis, user: str, command: tuple[str, ...]
) -> None:
    client = server.client(user)
    try:
        with pytest.raises(ResponseError, match=REFUSED):
            client.execute_command(*command)
    finally:
        client.close()
    assert_untouched(admin)


def test_default_user_is_off(server: AclRedis) -> None:
    """Without credentials nothing works: the default user is disabled."""
    anonymous = redis.Redis(port=server.port, socket_timeout=10)
    try:
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
    finally:
        anonymous.close()


# One example of every key twitstack.writes.keys names, and the scraper's lease.
KEY_EXAMPLES: dict[str, str] = {
    "WRITE_QUEUE": keys.WRITE_QUEUE,
    "DEAD_LETTER": keys.DEAD_LETTER,
    "CONSUMERS": keys.CONSUMERS,
    "CRASH_COUNTS": keys.CRASH_COUNTS,
    "EVENTS": keys.EVENTS,
    "SCHEDULE": keys.SCHEDULE,
    "EXPIRY": keys.EXPIRY,
    "RETENTION": keys.RETENTION,
    "processing_list": keys.processing_list("c"),
    "heartbeat": keys.heartbeat("c"),
    "request": keys.request("r1"),
    "state_index": keys.state_index("pending"),
    "rate_limit_budgets": keys.rate_limit_budgets("a", "tweets.create"),
    "rate_limit_budget": keys.rate_limit_budget("a", "tweets.create", "window"),
    "rate_limit_in_flight": keys.rate_limit_in_flight("a", "tweets.create"),
    "account_paused": keys.account_paused("a"),
    "oauth2_tokens": keys.oauth2_tokens("a"),
    "sealed_oauth2_tokens": keys.sealed_oauth2_tokens("a"),
    "token_refresh_lock": keys.token_refresh_lock("a"),
    "writer_notes": keys.writer_notes("r1"),
    "QUARANTINE": keys.QUARANTINE,
    "QUARANTINED_REFS": keys.QUARANTINED_REFS,
    "tombstone": keys.tombstone("r1"),
    "spent_approval": keys.spent_approval("ab" * 16),
    "X_ACCOUNTS": keys.X_ACCOUNTS,
    "X_ACCOUNTS_AUDIT": keys.X_ACCOUNTS_AUDIT,
    "x_connect_pending": keys.x_connect_pending("state"),
    "spend_rollup": keys.spend_rollup("2026-12"),
    "spend_caps": keys.spend_caps("2026-12-05"),
    "SPEND_CAPS_AUDIT": keys.SPEND_CAPS_AUDIT,
    "lease_key": lease_key("job"),
    "NOTIFY_OUTBOX": keys.NOTIFY_OUTBOX,
    "NOTIFY_ITEMS": keys.NOTIFY_ITEMS,
    "NOTIFY_SCHEDULED": keys.NOTIFY_SCHEDULED,
    "NOTIFY_DEAD": keys.NOTIFY_DEAD,
    "NOTIFY_STATE": keys.NOTIFY_STATE,
    "NOTIFY_WAITING": keys.NOTIFY_WAITING,
    "NOTIFY_COALESCE": keys.NOTIFY_COALESCE,
}
_NOTIFY = (
    "NOTIFY_OUTBOX", "NOTIFY_ITEMS", "NOTIFY_SCHEDULED", "NOTIFY_DEAD", "NOTIFY_STATE",
    "NOTIFY_WAITING", "NOTIFY_COALESCE",
)  # fmt: skip
_QUARANTINE = ("QUARANTINE", "QUARANTINED_REFS")
# Tombstones and spent nonces are written inside the ledger's transitions (reject, edit, send).
_LEDGER = (
    "EVENTS", "SCHEDULE", "EXPIRY", "RETENTION", "request", "state_index",
    "tombstone", "spent_approval",
)  # fmt: skip
_QUEUE_BOOKKEEPING = ("CONSUMERS", "CRASH_COUNTS", "processing_list", "heartbeat")
# rate_limit_budget and rate_limit_in_flight: the old layout's, still read (and dropped) by the
# writer's budget scripts to migrate them.
_ACCOUNT_STATE = (
    "rate_limit_budgets", "rate_limit_budget", "rate_limit_in_flight", "account_paused",
    "oauth2_tokens", "spend_rollup",
)  # fmt: skip


def _matrix() -> dict[str, dict[str, str]]:
    """Per role, per key: '' none, 'r' read, 'w' write (RPUSH/SET), 'rw' both."""
    everything_but_lease = {
        name: "rw" for name in KEY_EXAMPLES if name != "lease_key" and name not in _NOTIFY
    }
    moderation = {name: "rw" for name in ("WRITE_QUEUE", "DEAD_LETTER", *_LEDGER, *_QUARANTINE)}
    moderation |= {name: "r" for name in (*_QUEUE_BOOKKEEPING, *_ACCOUNT_STATE)}
    moderation["token_refresh_lock"] = "r"  # under token:* (a random owner id, not secret)
    # Admins raise spend caps from the Accounts page (audited): a field of the period's spend
    # rollup (spend_caps: the old layout's, under the audit's pattern); ops read them all.
    moderation |= {"spend_rollup": "rw", "spend_caps": "rw", "SPEND_CAPS_AUDIT": "rw"}
    ops = dict.fromkeys(moderation, "r") | {"X_ACCOUNTS": "r", "X_ACCOUNTS_AUDIT": "r"}
    ops |= dict.fromkeys(_NOTIFY, "r")
    # The notifier reads the ledger, dead letters and reconnect marks; writes only its own
    # keys and the quarantine.
    notifier = dict.fromkeys((*_LEDGER, "DEAD_LETTER", "X_ACCOUNTS", "oauth2_tokens",
                              "token_refresh_lock"), "r")  # fmt: skip
    notifier |= dict.fromkeys((*_NOTIFY, *_QUARANTINE), "rw")
    # Connecting accounts: records, pending sign-ins, audit, the sealed pair and its public
    # hash; the refresh lock lives under token:* too (a random owner id, nothing secret).
    moderation |= dict.fromkeys(
        ("X_ACCOUNTS", "X_ACCOUNTS_AUDIT", "x_connect_pending", "sealed_oauth2_tokens",
         "oauth2_tokens", "token_refresh_lock"), "rw",
    )  # fmt: skip
    return {
        "twitstack-producer": {"WRITE_QUEUE": "w"},
        "twitstack-scraper": {"WRITE_QUEUE": "w", "lease_key": "rw"},
        "twitstack-writer": everything_but_lease,
        "twitstack-daemon": everything_but_lease
        | {"lease_key": "rw"}
        | dict.fromkeys(_NOTIFY, "rw"),
        "twitstack-notifier": notifier,
        "twitstack-moderation": moderation,
        "twitstack-ops": ops,
    }


def test_every_key_in_keys_py_is_in_the_access_matrix() -> None:
    """A key added to twitstack.writes.keys must be placed in the ACL matrix (and the recipe)."""
    named = {
        name
        for name, value in vars(keys).items()
        if name.isupper() and isinstance(value, str) and not name.endswith(("_PREFIX", "_WINDOW"))
    }
    named |= {
        name
        for name, value in vars(keys).items()
        if inspect.isfunction(value)
        and value.__module__ == keys.__name__
        and inspect.signature(value).return_annotation in ("str", str)
    }
    assert named == set(KEY_EXAMPLES) - {"lease_key"}


@pytest.mark.parametrize("user", list(_matrix()))
def test_each_role_reaches_exactly_its_keys(server: AclRedis, user: str) -> None:
    """ACL DRYRUN per key: each role can read and write what the matrix says, nothing more."""
    expected = _matrix()[user]
    admin = server.client("twitstack-admin")
    try:

        def allowed(*command: str) -> bool:
            return admin.execute_command("ACL", "DRYRUN", user, *command) in (b"OK", "OK")

        found = {}
        for name, key in KEY_EXAMPLES.items():
            read = any(allowed(*c) for c in (("GET", key), ("LRANGE", key, "0", "-1")))
            write = any(allowed(*c) for c in (("RPUSH", key, "x"), ("SET", key, "x")))
            access = ("r" if read else "") + ("w" if write else "")
            if access:
                found[name] = access
    finally:
        admin.close()
    assert found == expected
