"""Adversary: junk in the writer's shared state (pause, budget hashes) must not wedge it."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writer.ratelimit import AccountPauses
from twitstack.writes import keys
from twitstack.writes.ledger import RequestLedger
from twitstack.writes.models import ModerationStatus

S = ModerationStatus
pytestmark = pytest.mark.anyio
BUDGET = keys.rate_limit_budgets("default", "tweets.create")
WINDOW = keys.rate_limit_budget("default", "tweets.create", "window")  # the old layout's
DAILY = keys.rate_limit_budget("default", "tweets.create", "24h")  # the old layout's
IN_FLIGHT = keys.rate_limit_in_flight("default", "tweets.create")  # the old layout's
PAUSED = keys.account_paused("default")

# Each writes junk where the writer keeps its per-account state, as a hand or a bug might:
# in the budget hash, and in the old layout's keys the writer still folds in on upgrade.
JUNK: dict[str, Callable[[Redis], Awaitable[object]]] = {
    "budget_reset_not_a_number": lambda r: r.hset(
        BUDGET, mapping={"window.reset": "junk", "layout": "2"}
    ),
    "budget_remaining_not_a_number": lambda r: r.hset(
        BUDGET, mapping={"window.reset": "9999999999", "window.remaining": "junk", "layout": "2"}
    ),
    "budget_key_is_a_list": lambda r: r.rpush(BUDGET, "junk"),
    "in_flight_not_a_number": lambda r: r.hset(
        BUDGET, mapping={"pending": "junk", "pending.until": "junk", "layout": "2"}
    ),
    "old_budget_reset_not_a_number": lambda r: r.hset(WINDOW, mapping={"reset": "junk"}),
    "old_budget_remaining_not_a_number": lambda r: r.hset(
        WINDOW, mapping={"reset": "9999999999", "remaining": "junk"}
    ),
    "old_budget_key_is_a_list": lambda r: r.rpush(WINDOW, "junk"),
    "old_daily_budget_key_is_a_string": lambda r: r.set(DAILY, "junk"),
    "old_in_flight_not_a_number": lambda r: r.set(IN_FLIGHT, "junk"),
    "old_in_flight_is_a_hash": lambda r: r.hset(IN_FLIGHT, mapping={"a": "b"}),
}


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()


@pytest.mark.parametrize("junk", sorted(JUNK))
async def test_junk_account_state_does_not_wedge_the_writer(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox, junk: str
) -> None:
    """The writer reads past junk budget/pause state and writes the next good request."""
    settings = writer_settings(make_settings, sandbox.base_url)
    await JUNK[junk](redis)
    good = approved(tweet("written despite junk state"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(good)
        await writer.wait_states([good.id], {S.EXECUTED}, timeout_s=8)
    assert [post.text for post in sandbox.state.content.posts.values()] == [
        "written despite junk state"
    ]


PAUSE_JUNK: dict[str, Callable[[Redis], Awaitable[object]]] = {
    "until_not_a_number": lambda r: r.hset(PAUSED, mapping={"reason": "x", "until": "junk"}),
    "reason_not_utf8": lambda r: r.hset(PAUSED, mapping={"reason": b"\xff\xfe", "until": ""}),
    "key_is_a_list": lambda r: r.rpush(PAUSED, "junk"),
}


@pytest.mark.parametrize("junk", sorted(PAUSE_JUNK))
async def test_unreadable_pause_holds_the_account_until_resume(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox, junk: str
) -> None:
    """A pause the writer cannot read is a pause until resume: shown, requests held, not failed."""
    settings = writer_settings(make_settings, sandbox.base_url, paused_recheck_s=0.2)
    await PAUSE_JUNK[junk](redis)
    good = approved(tweet("written after the resume"))
    async with running_writer(settings, redis, sandbox) as writer:

        async def shown_paused() -> bool:
            return writer.metric("writer_account_paused", account="default") == 1

        await wait_until(shown_paused, timeout_s=8)
        await writer.push(good)

        async def held() -> bool:
            # Deferred through the schedule (account_paused), not failed to needs_review.
            return await redis.zscore(keys.SCHEDULE, good.id) is not None

        await wait_until(held, timeout_s=8)
        assert await writer.state(good.id) == S.APPROVED
        assert await AccountPauses(redis, clock=time.time).resume("default")
        await writer.wait_states([good.id], {S.EXECUTED}, timeout_s=8)


@pytest.mark.parametrize(
    "when",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"],
)
async def test_message_with_a_date_past_the_calendar_is_dead_lettered(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox, when: str
) -> None:
    """A date whose UTC form leaves the calendar is a wire-format error, not an OverflowError."""
    settings = writer_settings(make_settings, sandbox.base_url)
    good = approved(tweet("the next one is written"))
    body = {"action": "tweet", "payload": {"text": "x"}, "created_at": when}
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push_raw(json.dumps(body).encode())
        await writer.push(good)
        await writer.wait_states([good.id], {S.EXECUTED}, timeout_s=8)

        async def dead_lettered() -> bool:
            return await redis.llen(keys.DEAD_LETTER) == 1

        await wait_until(dead_lettered, timeout_s=8)
        [letter] = await writer.dead_letters()
        assert letter["reason"] == "invalid_field"


EDGE = {
    "created_year_1": {"created_at": datetime(1, 1, 1, tzinfo=UTC)},
    "created_year_9999": {"created_at": datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)},
    "not_before_year_9999": {"not_before": datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)},
    "expires_year_1": {"expires_at": datetime(1, 1, 2, tzinfo=UTC)},
}


@pytest.mark.parametrize("edge", sorted(EDGE))
async def test_requests_at_the_calendar_edges_leave_the_writer_running(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox, edge: str
) -> None:
    """Dates at year 1 or 9999 are settled one way or another; the next request is written."""
    settings = writer_settings(make_settings, sandbox.base_url)
    odd = approved(tweet("at the edge", **EDGE[edge]))
    good = approved(tweet("the next one is written"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(odd, good)
        await writer.wait_states([good.id], {S.EXECUTED}, timeout_s=8)


async def test_reconciler_passes_over_junk_members_of_the_unknown_index(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """A non-UTF-8 member and an id with no record sit first in the index; the real one settles."""
    settings = writer_settings(make_settings, sandbox.base_url)
    ledger = RequestLedger(redis)
    fine = approved(tweet("fine while unknown"))
    await ledger.record(fine, actor="producer")
    await ledger.mark_sending(fine.id, actor="writer")
    await ledger.transition(
        fine.id, S.UNKNOWN, from_states=[S.SENDING], actor="writer", reason="test"
    )
    await redis.zadd(keys.state_index(S.UNKNOWN), {b"\xff\xfe junk": 0, "no-such-request": 1})
    async with running_writer(settings, redis, sandbox) as writer:
        # Never sent: the reconciler looks, finds it absent and settles it.
        await writer.wait_states([fine.id], {S.EXECUTED, S.APPROVED, S.NEEDS_REVIEW, S.FAILED})


TOKEN_JUNK: dict[str, Callable[[Redis], Awaitable[object]]] = {
    "sealed_not_a_seal": lambda r: r.set(keys.sealed_oauth2_tokens("default"), "junk"),
    "sealed_not_utf8": lambda r: r.set(keys.sealed_oauth2_tokens("default"), b"\xff\xfe"),
    "plain_expiry_not_a_number": lambda r: r.hset(
        keys.oauth2_tokens("default"), mapping={"access_token": "a", "expires_at": "junk"}
    ),
    "plain_not_utf8": lambda r: r.hset(keys.oauth2_tokens("default"), "access_token", b"\xff"),
}


@pytest.mark.parametrize("junk", sorted(TOKEN_JUNK))
async def test_unreadable_stored_tokens_are_handled_like_any_unopenable_seal(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox, junk: str
) -> None:
    """Junk at the token keys takes the path of a seal that will not open (account paused)."""
    settings = writer_settings(make_settings, sandbox.base_url)
    await TOKEN_JUNK[junk](redis)
    good = approved(tweet("held or written, never a handler error"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(good)

        async def settled() -> bool:
            return writer.metric("writer_account_paused", account="default") == 1 or (
                await writer.state(good.id) == S.EXECUTED
            )

        await wait_until(settled, timeout_s=8)
        assert writer.metric("writer_dead_letters_total", reason="handler_error") == 0


async def test_unreadable_connected_account_records_do_not_stop_the_writer(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """Junk in the connected-accounts hash is skipped at start and in every pass; posts go on."""
    settings = writer_settings(make_settings, sandbox.base_url)
    await redis.hset(
        keys.X_ACCOUNTS,
        mapping={"1": b"\xff\xfe", "2": "{not json", "3": json.dumps({"name": 7}), "4": "[]"},
    )
    good = approved(tweet("posted past junk connected accounts"))
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(good)
        await writer.wait_states([good.id], {S.EXECUTED})
        await writer.service.account_health.sync()  # a later pass reads past it too
