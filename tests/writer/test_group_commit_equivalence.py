"""Group commit changes nothing but the cost: a batch of begin_sending (or settle_sending) calls
in one batch script leaves the same keyspace and gives every entry the same reply as the same
calls made one at a time, on another redis-server.

The sequence mixes every way a step ends (sent, blocked by the rate budget, held by a spend cap,
a spent approval refused, a record that differs, junk records and keys written by hand, two
accounts and two endpoints, the same request twice), and the comparison covers every key: its
type, its value and its lifetime. Only what comes from Redis's clock may differ (stream entry
ids; `pending.until`, stamped from TIME) and lifetimes, within a tolerance. The same comparison
run against a broken shim (each of a few one-line faults) must find a difference, or it could
not catch one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tests.conftest import RedisServer
from tests.writer.harness import approved, tweet
from twitstack.core.sections.spend import Caps, SpendSettings
from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writer.send_steps import (
    Observation,
    PostClaim,
    QueueTicket,
    SendSteps,
    StepCall,
    batched,
)
from twitstack.writes import keys, scripts
from twitstack.writes.claims import claim_key
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus as S
from twitstack.writes.models import WriteRequest
from twitstack.writes.queue import message_digest
from twitstack.writes.spend import Periods, spend_args, spend_keys
from twitstack.writes.wire import encode_write_request

pytestmark = pytest.mark.anyio

ENDPOINT = "tweets.create"
BLOCKED_ENDPOINT = "dm.create"
PROCESSING = keys.processing_list("w")
_NOW = Periods.at(1_000.0)
_CAPPED = SpendSettings(accounts={"capped": Caps(daily_usd=0.01)})
# Lifetimes set inside one call are the same to the ms; the two servers run the sequence up to
# a few seconds apart on a loaded machine.
_TTL_SLACK_MS = 10_000
# Stamped from Redis's clock (TIME): the two servers read it at different moments.
_CLOCKED_FIELDS = frozenset({b"pending.until"})


def spend_for(account: str) -> tuple[list[str], list[str | int]]:
    settings = _CAPPED if account == "capped" else SpendSettings()
    return spend_keys(account, _NOW), spend_args(settings, account, "post", 15000, _NOW)


@dataclass
class Scenario:
    """The requests, what is in Redis before, and the begin and settle calls, in batch order."""

    requests: dict[str, WriteRequest]
    begins: list[StepCall]
    settles: list[StepCall]


def scenario() -> Scenario:
    r = {
        "fresh": approved(tweet("fresh")),
        "moderated": approved(tweet("moderated")),
        "other": approved(tweet("other account", account="other")),
        "other_moderated": approved(tweet("other moderated", account="other")),
        "blocked": approved(tweet("no room on this endpoint")),
        "spent": approved(tweet("approval already spent")),
        "pending": tweet("held for review"),
        "junk_attempt": approved(tweet("attempt written by hand")),
        "junk_type": approved(tweet("record of another type")),
        "capped": approved(tweet("over the cap", account="capped")),
        "capped_again": approved(tweet("over the cap again", account="capped")),
        "auto": tweet("require_approval = false"),
        "junk_budget": approved(tweet("budget of another type", account="junkbudget")),
        "junk_claim": approved(tweet("claim of another type")),
        "auto_recorded": tweet("recorded pending, then require_approval = false"),
        "last": approved(tweet("last")),
        "unsettled": approved(tweet("still in flight at the end")),
    }
    steps = SendSteps(
        Redis(), RequestLedger(Redis()), RateLimitBudgets(Redis(), clock=lambda: 1_000.0)
    )

    def begin(name: str, *, endpoint: str = ENDPOINT, auto: bool = False) -> StepCall:
        request = r[name]
        raw = encode_write_request(request)
        return steps.begin_call(
            request, raw, endpoint, actor="w", spend=spend_for(request.account), auto_approve=auto
        )

    begins = [
        begin("fresh"),
        begin("moderated"),
        # pending -> approved -> sending: the approved index gets this id and loses it again.
        begin("auto_recorded", auto=True),
        begin("fresh"),  # the same request twice in one batch: the second finds it sending
        begin("other"),
        begin("blocked", endpoint=BLOCKED_ENDPOINT),
        begin("spent"),
        begin("pending"),
        begin("junk_attempt"),
        begin("junk_type"),
        begin("capped"),
        begin("other_moderated"),
        begin("capped_again"),
        begin("auto", auto=True),
        begin("junk_budget"),
        begin("junk_claim"),
        begin("last"),
        begin("unsettled"),  # its reservation stays counted
    ]
    headers = {
        "x-rate-limit-limit": "100", "x-rate-limit-remaining": "42", "x-rate-limit-reset": "1900",
        "x-user-limit-24hour-limit": "500", "x-user-limit-24hour-remaining": "400",
        "x-user-limit-24hour-reset": "80000",
    }  # fmt: skip

    def settle(
        name: str,
        to: S = S.EXECUTED,
        *,
        remaining: str | None = None,
        post: str | None = None,
        observe: bool = True,
    ) -> StepCall:
        request = r[name]
        seen = dict(headers)
        if remaining is not None:
            seen["x-rate-limit-remaining"] = remaining
        return steps.settle_call(
            request.id, to, from_states=[S.SENDING], actor="w", reason="created",
            result={"tweet_id": post} if post else None,
            observation=Observation(request.account, ENDPOINT, seen) if observe else None,
            ticket=QueueTicket(PROCESSING, encode_write_request(request)),
            claim=PostClaim("tweet", post) if post else None,
        )  # fmt: skip

    settles = [
        settle("fresh", post="7001"),
        settle("moderated", remaining="40", post="7002"),
        settle("fresh", post="7001", observe=False),  # settled twice: found executed
        settle("other", post="7003"),
        # Its record is no hash: an error, the claim taken before it kept.
        settle("junk_type", post="7004", observe=False),
        settle("other_moderated", S.FAILED, observe=False),
        settle("auto", remaining="39", post="7005"),
        settle("junk_claim", post="7006"),  # the claim key is of another type
        settle("last", remaining="45", post="7001"),  # a claim someone holds
    ]
    return Scenario(r, begins, settles)


async def prepare(redis: Redis, s: Scenario, variant: str = "") -> None:
    """What both servers hold before the sequence (copied to the other, the same on each)."""
    if variant == "junk rollup":
        # Renamed aside by the first entry that reads it, then counted afresh.
        await redis.set(spend_keys("default", _NOW)[0], "junk")
    elif variant == "old layout":
        # Folded into the budget hash by the first entry that reads it (migrate on read).
        old = keys.rate_limit_budget("default", ENDPOINT, "window")
        await redis.hset(old, mapping={"limit": 100, "remaining": 50, "reset": 1_900})
        await redis.set(keys.rate_limit_budgets("default", ENDPOINT) + ":pending", 2, px=60_000)
    ledger = RequestLedger(redis)
    r = s.requests
    for name in ("moderated", "other_moderated", "pending", "junk_attempt", "auto_recorded"):
        await ledger.record(r[name], actor="moderation")
    await redis.hset(keys.REQUEST_PREFIX + (r["junk_attempt"].id), "attempt", "x")
    await redis.set(keys.REQUEST_PREFIX + (r["junk_type"].id), "junk")
    approval = r["spent"].approval
    assert approval is not None
    await redis.set(keys.SPENT_PREFIX + approval.nonce, "someone-else")
    await redis.hset(
        keys.rate_limit_budgets("default", BLOCKED_ENDPOINT),
        mapping={"window.limit": 1, "window.remaining": 0, "window.reset": 1_900, "layout": 2},
    )
    await redis.set(keys.rate_limit_budgets("junkbudget", ENDPOINT), "junk")
    await redis.hset(claim_key("tweet", "7006"), "junk", "1")
    for request in r.values():
        raw = encode_write_request(request)
        await redis.rpush(PROCESSING, raw)
        await redis.hset(keys.CRASH_COUNTS, message_digest(raw), 1)


async def copy_keyspace(source: Redis, target: Redis) -> None:
    """`source`'s keys into `target`, byte for byte (times the ledger stamped included)."""
    async for key in source.scan_iter(count=1000):
        ttl = max(await source.pttl(key), 0)
        await target.restore(key, ttl, await source.dump(key))


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, BaseException):
        # The error's code (WRONGTYPE, ERR...): the batch's text has no script name in it.
        return ("error", str(value).split()[0])
    return value


async def keyspace(redis: Redis) -> dict[bytes, tuple[str, Any, int]]:
    """Every key: its type, value (stream entries without their time-based ids) and pttl."""
    out: dict[bytes, tuple[str, Any, int]] = {}
    async for key in redis.scan_iter(count=1000):
        kind = (await redis.type(key)).decode()
        value: Any
        if kind == "string":
            value = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(await redis.smembers(key))
        elif kind == "stream":
            value = [fields for _id, fields in await redis.xrange(key)]
        else:
            raise AssertionError(f"{key!r}: a {kind} the writer never writes")
        out[key] = (kind, value, await redis.pttl(key))
    return out


def differences(
    alone: dict[bytes, tuple[str, Any, int]], grouped: dict[bytes, tuple[str, Any, int]]
) -> list[str]:
    found = [f"{k!r}: only one at a time" for k in alone.keys() - grouped.keys()]
    found += [f"{k!r}: only in the batch" for k in grouped.keys() - alone.keys()]
    for key in alone.keys() & grouped.keys():
        (kind, a, ttl_a), (kind_b, b, ttl_b) = alone[key], grouped[key]
        if kind != kind_b:
            found.append(f"{key!r}: {kind} vs {kind_b}")
            continue
        if kind == "hash":
            for field in _CLOCKED_FIELDS & a.keys() & b.keys():
                if abs(int(a[field]) - int(b[field])) < _TTL_SLACK_MS:
                    b = {**b, field: a[field]}
        if a != b:
            found.append(f"{key!r}: {a!r} vs {b!r}")
        if ((ttl_a < 0 or ttl_b < 0) and ttl_a != ttl_b) or abs(ttl_a - ttl_b) > _TTL_SLACK_MS:
            found.append(f"{key!r}: pttl {ttl_a} vs {ttl_b}")
    return sorted(found)


async def run_alone(redis: Redis, name: str, calls: list[StepCall]) -> list[Any]:
    one = scripts.register(redis, name)
    out: list[Any] = []
    for call_keys, call_args in calls:
        try:
            out.append(await one(keys=call_keys, args=call_args))
        except ResponseError as exc:
            out.append(exc)
    return out


async def run_grouped(redis: Redis, name: str, calls: list[StepCall], source: str) -> list[Any]:
    run = batched(redis, scripts.register(redis, name), redis.register_script(source))
    return list(await run(calls))


async def compare(
    make_redis_server: Callable[..., RedisServer], sources: dict[str, str], variant: str = ""
) -> tuple[list[Any], list[Any], list[str]]:
    """Both runs of one scenario: (replies alone, replies grouped, keyspace differences)."""
    s = scenario()
    alone, grouped = (Redis.from_url(make_redis_server().url) for _ in range(2))
    try:
        replies: tuple[list[Any], list[Any]] = ([], [])
        await prepare(alone, s, variant)
        await copy_keyspace(alone, grouped)
        for step, calls in (("begin_sending", s.begins), ("settle_sending", s.settles)):
            replies[0].extend(await run_alone(alone, step, calls))
            replies[1].extend(await run_grouped(grouped, step, calls, sources[f"{step}_batch"]))
        return (
            _plain(replies[0]),
            _plain(replies[1]),
            differences(await keyspace(alone), await keyspace(grouped)),
        )
    finally:
        await alone.aclose()
        await grouped.aclose()


def shipped() -> dict[str, str]:
    return {n: scripts.lua_source(n) for n in ("begin_sending_batch", "settle_sending_batch")}


@pytest.mark.parametrize("variant", ["", "junk rollup", "old layout"])
async def test_a_batch_leaves_what_the_same_calls_one_at_a_time_leave(
    make_redis_server: Callable[..., RedisServer], variant: str
) -> None:
    alone, grouped, diff = await compare(make_redis_server, shipped(), variant)
    assert grouped == alone
    assert diff == []
    if variant:
        return
    # The sequence reaches every ending it is meant to (else it proves less than it says).
    begun = [row[0] if isinstance(row, list) else row for row in alone[: len(scenario().begins)]]
    assert begun == [
        "ok", "ok", "ok", "differs", "ok", "blocked", "spent", "differs", "unreadable",
        ("error", "WRONGTYPE"), "budget", "ok", "budget", "ok", "ok", "ok", "ok", "ok",
    ]  # fmt: skip
    settled = [row[0] if isinstance(row, list) else row for row in alone[len(begun) :]]
    assert settled == [
        "ok", "ok", "state_mismatch", "ok", ("error", "WRONGTYPE"), "ok", "ok", "ok", "ok",
    ]  # fmt: skip


# One-line faults in the shim, each a semantic it must keep: the comparison must see each.
FAULTS = {
    "hincrby adds the wrong way": ("local sum = base + by", "local sum = base - by"),
    "a held write loses its value": ("  c.known[field] = value\n", "\n"),
    "a held expiry is dropped": (
        "if c.expire then group_real.call('EXPIRE', key, c.expire) end",
        "",
    ),
    "held removals are dropped": (  # sorted set members and the crash counts' fields
        "group_real.call(z.kind == 'hash' and 'HDEL' or 'ZREM', key, unpack(rems))",
        "",
    ),
    "a later write to a member is ignored": (
        "  z.last[member] = score\nend",
        "  if z.last[member] == nil then z.last[member] = score end\nend",
    ),
    "a cached read ignores a held write": (
        "        out[i - 2] = v\n",
        "        out[i - 2] = not held.dirty[args[i]] and v\n",
    ),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_the_comparison_catches_a_broken_shim(
    make_redis_server: Callable[..., RedisServer], fault: str
) -> None:
    old, new = FAULTS[fault]
    sources = shipped()
    for name, text in sources.items():
        assert old in text, (fault, name)
        sources[name] = text.replace(old, new)
    try:
        alone, grouped, diff = await compare(make_redis_server, sources)
    except ResponseError:
        return  # the broken batch script fails outright: seen too
    assert diff or grouped != alone, fault


def test_the_cores_never_read_what_a_held_sorted_set_write_returns() -> None:
    """The shim's ZADD, ZREM and HDEL answer 1, not Redis's count: no core may use that
    answer."""
    for name in ("begin_sending_batch", "settle_sending_batch"):
        for line in scripts.lua_source(name).splitlines():
            for command in ("'ZADD'", "'ZREM'", "'HDEL'"):
                if f"redis.call({command}" in line or f"redis.pcall({command}" in line:
                    code = line.split("redis.", 1)[0].strip()
                    assert code in ("", "else") or code.endswith((" then", " do")), line


def test_scenario_requests_are_distinct() -> None:
    s = scenario()
    assert len({r.id for r in s.requests.values()}) == len(s.requests)
    assert replace(s.requests["fresh"]) == s.requests["fresh"]


# Commands the cores never send a batch this way, each a case the shim must pass through or
# answer as Redis would: (setup, the script's body after the shim; it returns what it saw).
SHIM_CASES = {
    "expire in the past deletes a read key": (
        {"h": {"f": "1"}},
        "local a = redis.call('HMGET', 'h', 'f')\n"
        "redis.call('EXPIRE', 'h', 0)\n"
        "return {a[1], redis.call('HMGET', 'h', 'f')[1] or 'none'}",
    ),
    "hincrby of a field that is no integer fails as Redis's": (
        {"h": {"f": "1.5", "g": "007"}},
        "redis.call('HMGET', 'h', 'f', 'g')\n"
        "local e = redis.pcall('HINCRBY', 'h', 'f', 1)\n"
        "local e2 = redis.pcall('HINCRBY', 'h', 'g', 1)\n"
        "return {e.err or 'none', e2.err or 'none', redis.call('HMGET', 'h', 'f', 'g')}",
    ),
    "a number that is no integer is written as Redis writes it": (
        {"h": {"f": "1"}},
        "redis.call('HMGET', 'h', 'f')\n"
        "redis.call('HSET', 'h', 'f', 0.1, 'g', 3)\n"
        "return redis.call('HMGET', 'h', 'f', 'g')",
    ),
    "a deleted key is read afresh": (
        {"h": {"f": "1"}},
        "redis.call('HMGET', 'h', 'f')\n"
        "redis.call('HSET', 'h', 'f', '2')\n"
        "redis.call('DEL', 'h')\n"
        "return {redis.call('HMGET', 'h', 'f')[1] or 'none', redis.call('EXISTS', 'h')}",
    ),
    "a sorted set renamed over is written out first": (
        {"z": {"a": 1}, "y": {"b": 2}},
        "redis.call('ZADD', 'z', '5', 'a')\n"
        "redis.call('ZADD', 'z', '6', 'c')\n"
        "redis.call('ZREM', 'z', 'a')\n"
        "redis.call('RENAME', 'z', 'y')\n"
        "redis.call('ZADD', 'y', '7', 'd')\n"
        "return redis.call('ZRANGE', 'y', 0, -1, 'WITHSCORES')",
    ),
    "a sorted-set write to a hash fails as Redis's": (
        {"h": {"f": "1"}},
        "local e = redis.pcall('ZADD', 'h', '1', 'm')\n"
        "local e2 = redis.pcall('ZREM', 'h', 'm')\n"
        "return {e.err or 'none', e2.err or 'none'}",
    ),
    "an hset of a field never read goes through": (
        {"h": {"f": "1"}},
        "redis.call('HMGET', 'h', 'f')\n"
        "local n = redis.call('HSET', 'h', 'new', 'x', 'f', '2')\n"
        "return {n, redis.call('HGETALL', 'h')}",
    ),
}


@pytest.mark.parametrize("case", sorted(SHIM_CASES))
async def test_the_shim_passes_through_what_it_does_not_model(
    make_redis_server: Callable[..., RedisServer], case: str
) -> None:
    setup, body = SHIM_CASES[case]
    shim = scripts.lua_source("group_commit")
    plain = shim.replace("local redis = setmetatable(", "local _unused = setmetatable(")
    assert plain != shim
    seen: list[Any] = []
    for source in (shim, plain):
        redis = Redis.from_url(make_redis_server().url)
        try:
            for key, value in setup.items():
                if key.startswith("z") or key.startswith("y"):
                    await redis.zadd(key, value)  # type: ignore[arg-type]
                else:
                    await redis.hset(key, mapping=value)
            script = (
                source
                + "group_commit_cache('h')\n"
                + ("local out = (function()\n" + body + "\nend)()\ngroup_flush_all()\nreturn out\n")
            )
            seen.append((_plain(await redis.eval(script, 0)), await keyspace(redis)))
        finally:
            await redis.aclose()
    assert seen[0] == seen[1]
