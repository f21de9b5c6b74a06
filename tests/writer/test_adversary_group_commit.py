"""Adversary: group commit must not change how one entry's script error is classified.

The writer dead-letters a message whose script stopped on its own data (is_script_data_error)
instead of handing it back to be taken again at once, for ever. A batched entry is caught by
the batch script's pcall, whose error text lacks the `@user_script:` location Redis adds to a
lone script's error: the same junk record must be classified the same way in a batch.
"""

from __future__ import annotations

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tests.writer.harness import approved, tweet
from tests.writer.test_adversary_ledger_junk import WRONG_TYPES
from tests.writer.test_send_steps import ENDPOINT, SPEND, steps_for
from twitstack.writer.message_handler import is_script_data_error
from twitstack.writer.send_steps import BeginOutcome, BeginResult
from twitstack.writes.models import WriteRequest
from twitstack.writes.wire import encode_write_request

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("junk", sorted(WRONG_TYPES))
@pytest.mark.parametrize("grouped", [False, True], ids=["alone", "batched"])
async def test_a_junk_records_script_error_is_a_script_data_error_in_a_batch_too(
    redis: Redis, junk: str, grouped: bool
) -> None:
    steps, _ = steps_for(redis)
    bad = approved(tweet(f"junk {junk}"))
    good = approved(tweet("its batch mate"))
    await WRONG_TYPES[junk](redis, bad.id)
    outcomes: dict[str, BaseException | BeginResult] = {}

    async def begin(request: WriteRequest) -> None:
        try:
            outcomes[request.id] = await steps.begin(
                request, encode_write_request(request), ENDPOINT, actor="w", spend=SPEND
            )
        except Exception as exc:
            outcomes[request.id] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(begin, bad)
        if grouped:
            tg.start_soon(begin, good)
    if grouped:
        assert steps._begins.batches == 1  # one batch of two
        assert steps._begins.items == 2
        assert isinstance(outcomes[good.id], BeginResult)
        assert outcomes[good.id].outcome is BeginOutcome.SENDING  # type: ignore[union-attr]
    error = outcomes[bad.id]
    assert isinstance(error, ResponseError), error
    assert is_script_data_error(error), str(error)
