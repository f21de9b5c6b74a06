"""X's per-user window (100 per 15 minutes, clock driven by the test) against the real writer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import (
    DEFAULT_BEARER_TOKEN,
    BearerTokenSpec,
    Endpoint,
    LimitScope,
    WindowLimit,
    XApiSandboxConfig,
)
from twitstack.writes.models import ModerationStatus

S = ModerationStatus
pytestmark = pytest.mark.anyio
WINDOW_S = 900.0
LIMIT = 100


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    """Follows the wall clock, jumps forward when the test advances it."""
    return XApiSandboxConfig(
        bearer_tokens=(
            BearerTokenSpec(token=DEFAULT_BEARER_TOKEN, user_id="1000"),
            BearerTokenSpec(token="second-user-token", user_id="1001"),
        ),
        rate_limits={
            Endpoint.CREATE_TWEET: (
                WindowLimit(scope=LimitScope.USER, limit=LIMIT, window_s=WINDOW_S),
            ),
        },
    )


async def test_window_is_used_fully_and_never_overrun(
    make_settings: Callable[..., Settings], redis: Redis, sandbox: RunningSandbox
) -> None:
    """250 tweets on a 100-per-window account: 100 per window, no 429, the other account flows."""
    base = writer_settings(make_settings, sandbox.base_url, concurrency=8)
    second = {"name": "second", "user_id": "1001", "access_token_secret": "SECOND_ACCESS"}
    accounts = [a.model_dump() for a in base.writer.accounts] + [second]
    settings = writer_settings(make_settings, sandbox.base_url, concurrency=8, accounts=accounts)
    busy = [approved(tweet(f"busy account {i}")) for i in range(250)]
    other = [approved(tweet(f"other account {i}", account="second")) for i in range(30)]
    content = sandbox.state.content

    def posted_by(user_id: str) -> int:
        return sum(1 for p in content.posts.values() if p.author_id == user_id)

    async with running_writer(
        settings, redis, sandbox, secrets={"SECOND_ACCESS": "second-user-token"}
    ) as writer:
        await writer.push(*busy, *other)
        per_window: list[int] = []
        for window in range(3):
            expected = min(LIMIT * (window + 1), len(busy))

            async def filled(expected: int = expected) -> bool:
                return posted_by("1000") >= expected

            await wait_until(filled, timeout_s=30)
            if window == 0:
                # The limited account never blocks the other one.
                await writer.wait_states([r.id for r in other], {S.EXECUTED})
            if expected < len(busy):
                # The rest wait in the schedule for the reset; nothing more goes out meanwhile.
                async def parked(waiting: int = len(busy) - expected) -> bool:
                    records = await writer.ledger.get_many([r.id for r in busy])
                    return sum(r.state is S.APPROVED for r in records) == waiting

                await wait_until(parked, timeout_s=10)
                assert posted_by("1000") == expected
            per_window.append(posted_by("1000") - sum(per_window))
            sandbox.state.clock.advance(WINDOW_S + 1)
        await writer.wait_states([r.id for r in busy], {S.EXECUTED})
        refused = writer.metric(
            "writer_outcomes_total", action="tweet", kind="wait_until", reason="rate_limited"
        )
    assert per_window == [100, 100, 50]
    assert all(used / LIMIT >= 0.98 for used in per_window[:2])
    assert refused == 0  # X never had to say 429: no request reached an exhausted window
    assert posted_by("1001") == 30
