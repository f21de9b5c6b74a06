"""The queue's spend header is read once per TTL, never across a period change, and a cap
raised from the Accounts page shows at once."""

from __future__ import annotations

import pytest

from tests.moderation.harness import Harness
from tests.moderation.test_spend_pages import CAPS, spent
from twitstack.moderation.roles import Role
from twitstack.moderation.spend_summary import SpendSummary
from twitstack.writes import keys

pytestmark = pytest.mark.anyio


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_reused_within_ttl_then_read_again(mod: Harness) -> None:
    ticks = Ticks()
    summary = SpendSummary(ttl_s=2.0, monotonic=ticks)
    await spent(mod, 1_000_000)
    first = await summary.get(mod.redis, CAPS, ("default",), mod.clock())
    assert (first.month.spent, first.held) == (1_000_000, ())
    await spent(mod, 500_000)
    await mod.redis.hset(keys.account_paused("default"), "reason", "budget")
    ticks.now += 1.9
    assert await summary.get(mod.redis, CAPS, ("default",), mod.clock()) is first
    ticks.now += 0.2
    again = await summary.get(mod.redis, CAPS, ("default",), mod.clock())
    assert (again.month.spent, again.day.spent, again.held) == (1_500_000, 1_500_000, ("default",))
    assert summary.reads == 2


async def test_a_new_day_or_other_accounts_are_never_served_from_the_cache(mod: Harness) -> None:
    summary = SpendSummary(ttl_s=60.0, monotonic=Ticks())
    await spent(mod, 1_000_000)
    now = mod.clock()
    await summary.get(mod.redis, CAPS, ("default",), now)
    other = await summary.get(mod.redis, CAPS, ("default", "second"), now)
    tomorrow = await summary.get(mod.redis, CAPS, ("default",), now + 86400)
    assert summary.reads == 3
    assert other.day.spent == 1_000_000
    assert tomorrow.day.spent == 0


async def test_a_cap_raised_on_the_accounts_page_shows_on_the_next_queue(mod: Harness) -> None:
    mod.deps.spend = CAPS
    mod.deps.queue_spend = SpendSummary(ttl_s=3600.0)
    await mod.add_user("ad", Role.ADMIN)
    async with mod.client() as client:
        csrf = await mod.login(client, "ad")
        before = (await client.get("/queue")).text
        raised = await client.post(
            "/accounts/spend/cap",
            data={"scope": "*", "period": "month", "usd": "250", "csrf_token": csrf},
        )
        after = (await client.get("/queue")).text
    assert "of $100.000" in before
    assert raised.status_code == 303
    assert "of $250.000" in after
