"""Adversary: a spend total that is not a plain integer must not reopen the cap.

spend_core.lua reads such a total rounded up (never less than was spent).
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from tests.writer.harness import approved, tweet
from tests.writer.test_send_steps import ENDPOINT, steps_for
from twitstack.core.sections.spend import Caps, SpendSettings
from twitstack.writer.send_steps import BeginOutcome
from twitstack.writes import keys
from twitstack.writes.spend import Periods, spend_args, spend_keys
from twitstack.writes.wire import encode_write_request

pytestmark = pytest.mark.anyio
_NOW = Periods.at(1_000.0)
CAP = 450_000  # micro-USD: 0.45 USD a day over every account
SETTINGS = SpendSettings(total=Caps(daily_usd=CAP / 1_000_000))
SPEND = (spend_keys("default", _NOW), spend_args(SETTINGS, "default", "post", 15_000, _NOW))

# What a hand (or a tool using HINCRBYFLOAT) leaves of a day's total of 440000 micro-USD, 10000
# short of the cap: spend_core reads each as junk and resets it to 0, so the cap opens again.
SPENT_AS = {"float": "440000.5", "exponent": "4.4e5", "padded": " 440000"}


@pytest.mark.parametrize("junk", sorted(SPENT_AS))
async def test_a_total_that_is_no_plain_integer_still_holds_the_cap(
    redis: Redis, junk: str
) -> None:
    steps, _ = steps_for(redis)
    value = SPENT_AS[junk]
    await redis.hset(keys.spend_rollup(_NOW.day), mapping={"*|*": value, "default|*": value})
    request = approved(tweet("one post past the cap"))
    begun = await steps.begin(
        request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND
    )
    assert begun.outcome is BeginOutcome.BUDGET
