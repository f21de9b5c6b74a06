"""The month chart of daily X spend never draws a day it could not read as $0: an unreadable
total (not a number, not UTF-8) or a rollup of the wrong type is charted as unreadable; a read
Redis refuses (NOPERM) is logged with the key and raised, never a month of zeros."""

from __future__ import annotations

import re

import pytest
from redis.exceptions import NoPermissionError
from structlog.testing import capture_logs

from tests.moderation.harness import Harness
from tests.moderation.old_acl import accounts_page, moderation_user_without
from twitstack.writes import keys
from twitstack.writes.spend import Periods, daily_series

pytestmark = pytest.mark.anyio
SPEND = "twitstack:writer:spend:*"


async def test_an_unreadable_day_is_charted_as_unreadable_not_zero(mod: Harness) -> None:
    now = Periods.at(mod.clock())
    await mod.redis.hset(keys.spend_rollup(now.day), mapping={"*|*": "lots", "default|*": 5})
    series = dict(await daily_series(mod.redis, now.month, None))
    assert series[now.day] is None
    assert dict(await daily_series(mod.redis, now.month, "default"))[now.day] == 5
    await mod.redis.delete(keys.spend_rollup(now.day))
    await mod.redis.set(keys.spend_rollup(now.day), "not a hash")
    assert dict(await daily_series(mod.redis, now.month, "default"))[now.day] is None
    code, html = await accounts_page(mod)
    assert code == 200
    charts = re.findall(r'<svg class="spend-chart".*?</svg>', html, flags=re.S)
    assert len(charts) == 2
    for chart in charts:
        assert f"<title>{now.day}: unreadable</title>" in chart
        assert "1 day unreadable" in chart


async def test_a_total_that_is_not_utf8_is_unreadable_not_a_failed_page(mod: Harness) -> None:
    now = Periods.at(mod.clock())
    await mod.redis.hset(keys.spend_rollup(now.day), mapping={"*|*": b"\xff\xfe"})
    assert dict(await daily_series(mod.redis, now.month, None))[now.day] is None
    code, html = await accounts_page(mod)
    assert code == 200
    assert f"<title>{now.day}: unreadable</title>" in html


async def test_a_refused_daily_series_is_raised_and_logged_not_zero(mod: Harness) -> None:
    """NOPERM on the rollups: raised with the key logged, never a month of $0; the page is
    the plain error page, no secrets on it."""
    now = Periods.at(mod.clock())
    await mod.redis.hset(keys.spend_rollup(now.day), mapping={"*|*": 7, "default|*": 7})
    async with moderation_user_without(mod, SPEND) as old:
        with capture_logs() as logs, pytest.raises(NoPermissionError):
            await daily_series(old, now.month, None)
        code, html = await accounts_page(mod, old)
    refused = [e for e in logs if e["event"] == "spend.read_refused"]
    assert refused
    assert refused[0]["user"] == "old-moderation"
    assert refused[0]["key"].startswith("twitstack:writer:spend:")
    assert code == 500
    assert html == "500: internal error"
