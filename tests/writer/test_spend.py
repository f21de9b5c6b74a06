"""The spend ledger and budgets against the fake X: charged with the send, capped, resumed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import (
    WriterHarness,
    approved,
    running_writer,
    tweet,
    wait_until,
    writer_settings,
)
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import Endpoint, FaultKind, XApiSandboxConfig
from twitstack.sandbox.xapi.faults import ScriptEntry
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus
from twitstack.writes.spend import Periods, raise_cap

S = ModerationStatus
pytestmark = pytest.mark.anyio
POST = 15_000  # micro-USD, X's default price of a post


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """Follows the wall clock and jumps when a test advances it (a new day, a recheck)."""
    return XApiSandboxConfig()


def capped(make_settings: Callable[..., Settings], base_url: str, **spend: Any) -> Settings:
    settings = writer_settings(make_settings, base_url, paused_recheck_s=0.2)
    return settings.model_copy(update={"spend": settings.spend.model_validate(spend)})


async def rollup(redis: Redis, period: str) -> dict[str, int]:
    """The rollup's spend fields (not its raised caps, hold notes or layout mark)."""
    raw = await redis.hgetall(keys.spend_rollup(period))
    return {
        k.decode(): int(v)
        for k, v in raw.items()
        if k != b"layout" and not k.endswith((b"|*|cap", b"|*|held"))
    }


async def executed_count(writer: WriterHarness, ids: list[str]) -> int:
    return sum(r.state is S.EXECUTED for r in await writer.ledger.get_many(ids))


async def test_cap_holds_requests_pauses_for_budget_and_a_raise_lets_them_go(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A $0.03 day cap lets two $0.015 posts through; the rest wait, then go once raised."""
    settings = capped(make_settings, sandbox.base_url, accounts={"default": {"daily_usd": 0.03}})
    requests = [approved(tweet(f"capped {i}")) for i in range(4)]
    ids = [r.id for r in requests]
    async with running_writer(settings, redis, sandbox) as writer:
        day = Periods.at(sandbox.state.clock.now()).day
        await writer.push(*requests)

        async def two_sent_two_held() -> bool:
            states = [r.state for r in await writer.ledger.get_many(ids)]
            pause = await redis.hget(keys.account_paused("default"), "reason")
            return sorted(states) == sorted([S.EXECUTED] * 2 + [S.APPROVED] * 2) and bool(pause)

        await wait_until(two_sent_two_held, timeout_s=15)
        pause = await redis.hgetall(keys.account_paused("default"))
        assert pause[b"reason"] == b"budget", pause
        assert pause[b"budget"] == b"account|day", pause
        assert float(pause[b"until"]) == Periods.at(sandbox.state.clock.now()).day_end
        assert await rollup(redis, day) == {
            "default|post": 2 * POST, "default|*": 2 * POST, "*|*": 2 * POST,
        }  # fmt: skip
        assert len(sandbox.state.content.posts) == 2
        assert writer.metric("twitstack_x_spend_usd_total", account="default", action="post") == (
            pytest.approx(0.03)
        )

        async def reached() -> bool:  # the gauges are per replica and eventually consistent
            metric = "twitstack_x_spend_budget_reached"
            return writer.metric(metric, scope="default", period="day") == 1

        await wait_until(reached, timeout_s=20)
        await raise_cap(
            redis, settings.spend, scope="default", period="day", usd_cap=0.06, actor="test",
            now=sandbox.state.clock.now(),
        )  # fmt: skip
        await writer.wait_states(ids, {S.EXECUTED}, timeout_s=15)
        left = await redis.hgetall(keys.account_paused("default"))
        assert left == {}, left
        assert (await rollup(redis, day))["*|*"] == 4 * POST
        assert len(sandbox.state.content.posts) == 4
        audit = await redis.xrange(keys.SPEND_CAPS_AUDIT)
        assert len(audit) == 1


async def test_a_new_day_resumes_held_requests(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A moved clock (no sleeping for a day): the next UTC day has a fresh budget."""
    settings = capped(make_settings, sandbox.base_url, total={"daily_usd": 0.015})
    requests = [approved(tweet(f"day {i}")) for i in range(3)]
    ids = [r.id for r in requests]
    async with running_writer(settings, redis, sandbox) as writer:
        first = Periods.at(sandbox.state.clock.now())
        await writer.push(*requests)

        async def one_sent() -> bool:
            return await executed_count(writer, ids) == 1 and bool(
                await redis.exists(keys.account_paused("default"))
            )

        await wait_until(one_sent, timeout_s=15)
        pause = await redis.hgetall(keys.account_paused("default"))
        assert pause[b"budget"] == b"total|day"
        sandbox.state.clock.advance(first.day_end - sandbox.state.clock.now() + 1)
        second = Periods.at(sandbox.state.clock.now())
        assert second.day != first.day

        async def two_sent() -> bool:
            return await executed_count(writer, ids) == 2

        await wait_until(two_sent, timeout_s=15)
        assert (await rollup(redis, first.day))["*|*"] == POST
        assert (await rollup(redis, second.day))["*|*"] == POST
        # The third waits for the day after: one post per day.
        assert await executed_count(writer, ids) == 2


async def test_reconciliation_reads_are_charged_per_post_read(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Commit-then-503: the send is charged, and so is every post the read-back returned."""
    sandbox.state.faults.script(
        Endpoint.CREATE_TWEET, [ScriptEntry(fault=FaultKind.COMMIT_THEN_503)]
    )
    settings = capped(make_settings, sandbox.base_url)
    request = approved(tweet("landed despite the 503"))
    async with running_writer(settings, redis, sandbox) as writer:
        day = Periods.at(sandbox.state.clock.now()).day
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
        spent = await rollup(redis, day)
        read = writer.metric(
            "twitstack_x_spend_usd_total", account="default", action="timeline_read"
        )
    assert spent["default|post"] == POST
    assert spent["default|timeline_read"] == 5_000  # one post read back at $0.005
    assert spent["*|*"] == POST + 5_000
    assert read == pytest.approx(0.005)


async def test_hostile_budget_keys_are_set_aside_and_sending_goes_on(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Junk where the ledger and caps live: no crash; counted, logged, and the request sent."""
    settings = capped(make_settings, sandbox.base_url, accounts={"default": {"daily_usd": 1.0}})
    now = Periods.at(sandbox.state.clock.now())
    # A day total that is a number but no count (one of another type holds: the test below).
    await redis.hset(keys.spend_rollup(now.day), mapping={"*|*": "1e3"})
    await redis.hset(keys.spend_rollup(now.month), mapping={"default|*": "1e99", "*|*": "-5",
                                                            "default|*|cap": "lots"})  # fmt: skip
    # The old layout's caps hashes, read until the rollups fold them in.
    await redis.hset(keys.spend_caps(now.day), mapping={"default": "lots"})
    await redis.set(keys.spend_caps(now.month), "not a hash")
    request = approved(tweet("sent despite the junk"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
        junk = writer.metric(
            "twitstack_quarantined_total", source="spend_budget", reason="junk_value"
        )
    assert junk == 1  # once per account and day, however many values
    entries = [json.loads(e) for e in await redis.lrange(keys.QUARANTINE, 0, -1)]
    # The month's total "-5" cannot be read: the gauges' refresh (at start) lists its rollup.
    found = [(e["source"], e["reason"]) for e in entries]
    assert ("spend_budget", "junk_value") in found
    assert set(found) <= {("spend_budget", "junk_value"), ("spend_rollup", "unreadable_total")}
    assert len(found) == len(set(found))
    assert (await rollup(redis, now.day))["*|*"] == 1_000 + POST
    month = await rollup(redis, now.month)
    # No cap counts these month totals, so they hold nothing: a number, however absurd, is
    # kept (it would hold any cap); one that cannot be read is never written over.
    assert month["default|*"] > 10**98
    assert month["*|*"] == -5
    # The junk caps were ignored, not applied; the admin's data is left for a person.
    assert await redis.hget(keys.spend_caps(now.day), "default") == b"lots"
    assert await redis.hget(keys.spend_rollup(now.month), "default|*|cap") == b"lots"


async def test_a_spend_rollup_of_another_type_holds_the_account_not_restarts_from_zero(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """The day's rollup replaced by a string (by hand, or corruption): its spend cannot be
    read, so the capped account is held for its budget (not counted afresh from $0 and sent),
    counted, logged; the string is left for the operator, whose fix lets the request go."""
    settings = capped(make_settings, sandbox.base_url, accounts={"default": {"daily_usd": 1.0}})
    now = Periods.at(sandbox.state.clock.now())
    await redis.set(keys.spend_rollup(now.day), "not a hash")
    request = approved(tweet("held while the day's spend is unreadable"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(request)

        async def held() -> bool:
            return await redis.hget(keys.account_paused("default"), "reason") == b"budget"

        await wait_until(held, timeout_s=15)
        assert await writer.state(request.id) is S.APPROVED
        assert await redis.hget(keys.account_paused("default"), "budget") == b"account|day"
        assert await redis.get(keys.spend_rollup(now.day)) == b"not a hash"
        assert sandbox.state.content.posts == {}
        junk = writer.metric(
            "twitstack_quarantined_total", source="spend_budget", reason="junk_value"
        )
        assert junk == 1
        unreadable = writer.metric(
            "twitstack_quarantined_total", source="spend_rollup", reason="wrong_type"
        )
        assert unreadable == 1
        [entry] = [
            json.loads(e)
            for e in await redis.lrange(keys.QUARANTINE, 0, -1)
            if json.loads(e)["source"] == "spend_rollup"
        ]
        assert entry["ref"] == keys.spend_rollup(now.day)
        # The operator's fix (docs/operations.md): the true figures back as a hash, then resume.
        await redis.delete(keys.spend_rollup(now.day))
        await redis.hset(keys.spend_rollup(now.day), mapping={"default|*": 0, "*|*": 0})
        await redis.delete(keys.account_paused("default"))
        await writer.wait_states([request.id], {S.EXECUTED}, timeout_s=15)
    assert (await rollup(redis, now.day))["default|*"] == POST


async def test_media_uploads_are_charged_per_file_and_cached_ids_are_free(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    from tests.support.media_files import png
    from tests.writer.test_media_writer import stored, with_media

    settings = capped(make_settings, sandbox.base_url, prices={"media_upload": 0.01})
    first = await stored(settings, png(seed=1))
    second = await stored(settings, png(seed=2))
    requests = [with_media("two pictures", first, second), with_media("again", first, second)]
    async with running_writer(settings, redis, sandbox) as writer:
        day = Periods.at(sandbox.state.clock.now()).day
        await writer.push(requests[0])
        await writer.wait_states([requests[0].id], {S.EXECUTED})
        await writer.push(requests[1])  # the same files: their media ids come from the cache
        await writer.wait_states([requests[1].id], {S.EXECUTED})
        uploads = writer.metric(
            "twitstack_x_spend_usd_total", account="default", action="media_upload"
        )
    spent = await rollup(redis, day)
    assert spent["default|media_upload"] == 2 * 10_000
    assert spent["default|post"] == 2 * POST
    assert spent["*|*"] == 2 * 10_000 + 2 * POST
    assert uploads == pytest.approx(0.02)


async def test_a_reservation_given_back_before_any_call_is_refunded(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Credentials that do not open: reserved and charged, then refunded; nothing reached X."""
    base = writer_settings(make_settings, sandbox.base_url, paused_recheck_s=30.0)
    account = base.writer.accounts[0].model_copy(update={"access_token_secret": "MISSING"})
    settings = base.model_copy(
        update={"writer": base.writer.model_copy(update={"accounts": (account,)})}
    )
    request = approved(tweet("never sent"))
    async with running_writer(settings, redis, sandbox) as writer:
        day = Periods.at(sandbox.state.clock.now()).day
        await writer.push(request)

        async def paused() -> bool:
            return await redis.hget(keys.account_paused("default"), "reason") == b"credentials"

        await wait_until(paused, timeout_s=15)
        counted = writer.metric("twitstack_x_spend_usd_total", account="default", action="post")
    assert await writer.state(request.id) is S.APPROVED
    assert sandbox.state.content.posts == {}
    # Charged in the reservation (the fields exist), refunded when the credentials failed.
    assert await rollup(redis, day) == {"default|post": 0, "default|*": 0, "*|*": 0}
    assert counted == 0


async def test_every_part_of_a_thread_is_charged_at_its_own_price(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    from twitstack.writes.models import WriteAction, WriteRequest

    texts = ["one of three", "two: see example.com", "three of three"]
    request = approved(
        WriteRequest(action=WriteAction.THREAD, payload={"parts": [{"text": t} for t in texts]})
    )
    settings = capped(make_settings, sandbox.base_url)
    async with running_writer(settings, redis, sandbox) as writer:
        day = Periods.at(sandbox.state.clock.now()).day
        await writer.push(request)
        await writer.wait_states([request.id], {S.EXECUTED})
    spent = await rollup(redis, day)
    assert len(sandbox.state.content.posts) == 3
    assert spent["default|post"] == 2 * POST
    assert spent["default|post_with_url"] == 200_000
    assert spent["*|*"] == 2 * POST + 200_000
