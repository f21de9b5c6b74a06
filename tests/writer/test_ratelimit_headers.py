"""Rate-limit headers that do not describe the account's window never move its budget."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import (
    DEFAULT_BEARER_TOKEN,
    Endpoint,
    LimitScope,
    WindowLimit,
    XApiSandboxConfig,
)
from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writes.models import ModerationStatus

S = ModerationStatus
pytestmark = pytest.mark.anyio
START = 1_800_000_000.0
LIMIT = 3
WINDOW_S = 900.0


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """A frozen clock and a small per-user window on POST /2/tweets."""
    window = WindowLimit(scope=LimitScope.USER, limit=LIMIT, window_s=WINDOW_S)
    return XApiSandboxConfig(
        clock_start=START, clock_frozen=True, rate_limits={Endpoint.CREATE_TWEET: (window,)}
    )


async def test_a_401_does_not_refresh_an_exhausted_window(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """The 401's anonymous bucket (full, later reset) is ignored: nothing is sent early."""
    settings = writer_settings(make_settings, sandbox.base_url, concurrency=1)
    first = [approved(tweet(f"before the 401 {i}")) for i in range(LIMIT - 1)]
    last = approved(tweet("after a token refresh"))
    waiting = [approved(tweet(f"must wait for the window {i}")) for i in range(4)]
    async with running_writer(settings, redis, sandbox) as writer:
        await writer.push(*first)
        await writer.wait_states([r.id for r in first], {S.EXECUTED})
        # The anonymous bucket opens later than the account's window: its reset is later.
        sandbox.state.clock.advance(100)
        sandbox.state.tokens.expire_bearer(DEFAULT_BEARER_TOKEN)
        await writer.push(last)  # 401 → refresh → sent again → the window's last request
        await writer.wait_states([last.id], {S.EXECUTED})
        budget = await RateLimitBudgets(redis, clock=sandbox.state.clock.now).budget(
            "default", "tweets.create"
        )
        await writer.push(*waiting)

        async def all_decided() -> bool:
            found = await writer.ledger.get_many([r.id for r in waiting])
            return len(found) == len(waiting) and all(
                r.last_reason != "received" and r.state is not S.SENDING for r in found
            )

        await wait_until(all_decided)
        records = [await writer.record(r.id) for r in waiting]
        rate_limited = writer.metric(
            "writer_outcomes_total", action="tweet", kind="wait_until", reason="rate_limited"
        )
    assert budget is not None
    assert (budget.remaining, budget.reset) == (0, START + WINDOW_S)  # what `writer status` shows
    assert [(r.state, r.last_reason) for r in records] == [(S.APPROVED, "rate_limit_budget")] * 4
    assert rate_limited == 0  # no request was sent into the exhausted window
    assert len(sandbox.state.content.posts) == LIMIT
