"""The Accounts page never shows an account's state it could not read as "all fine": a writer
key of the wrong type shows as unreadable; a key Redis refuses this user (NOPERM, an ACL file
older than the page) is logged with what is missing and shown as an error, never "active"."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from tests.moderation.harness import Harness
from tests.moderation.old_acl import accounts_page, moderation_user_without
from twitstack.moderation.accounts import account_statuses
from twitstack.writes import keys

pytestmark = pytest.mark.anyio
PAUSED = "twitstack:writer:paused:*"


def _section(html: str, account: str) -> str:
    start = html.index(f"<h2>{account}")
    end = html.find("</section>", start)
    return html[start:end]


async def test_writer_keys_of_the_wrong_type_show_as_unreadable(mod: Harness) -> None:
    await mod.redis.set(keys.account_paused("default"), "junk")
    await mod.redis.set(keys.rate_limit_budgets("default", "post_tweet"), "junk")
    [status] = await account_statuses(mod.redis, ["default"])
    assert status.pause_unknown
    assert sorted((p.kind, p.refused) for p in status.unreadable) == [
        ("budget", False), ("paused", False),
    ]  # fmt: skip
    code, html = await accounts_page(mod)
    assert code == 200
    section = _section(html, "default")
    assert "pause unreadable" in section
    assert ">active<" not in section
    assert f"<code>{keys.account_paused('default')}</code> (paused): unreadable" in section


async def test_a_pause_redis_refuses_is_logged_and_shown_as_an_error(mod: Harness) -> None:
    """NOPERM reading the pause (an ACL without the pattern): never "active"."""
    await mod.redis.hset(keys.account_paused("default"), mapping={"reason": "manual"})
    async with moderation_user_without(mod, PAUSED) as old:
        with capture_logs() as logs:
            [status] = await account_statuses(old, ["default"])
            code, html = await accounts_page(mod, old)
    assert [(p.key, p.refused) for p in status.unreadable] == [
        (keys.account_paused("default"), True)
    ]
    refused = [e for e in logs if e["event"] == "moderation.account_state_refused"]
    assert refused
    assert refused[0]["key"] == keys.account_paused("default")
    assert refused[0]["user"] == "old-moderation"
    assert refused[0]["log_level"] == "error"
    assert "redis-acl" in refused[0]["fix"]
    assert code == 200
    section = _section(html, "default")
    assert "pause unreadable" in section
    assert ">active<" not in section
    assert "Redis refused this service" in section
