"""X spend on the pages: the approval card's cost and budget, the Accounts chart and cap
raise (admins only, audited), month-to-date and budget holds on the queue, GET /api/spend."""

from __future__ import annotations

import json
import re

import pytest

from tests.moderation.harness import Harness
from twitstack.core.sections.spend import SpendSettings
from twitstack.moderation.roles import Role
from twitstack.writes import keys
from twitstack.writes.spend import Periods

pytestmark = pytest.mark.anyio
CAPS = SpendSettings.model_validate(
    {
        "prices": {"media_upload": 0.01},
        "total": {"monthly_usd": 100.0},
        "accounts": {"default": {"daily_usd": 1.0, "monthly_usd": 10.0}},
    }
)


async def spent(mod: Harness, micros: int, *, day_offset: int = 0) -> Periods:
    """Record `micros` of posts by `default` today (minus `day_offset` days), as the writer does."""
    now = Periods.at(mod.clock() - day_offset * 86400)
    for period in (now.day, now.month):
        key = keys.spend_rollup(period)
        for field in ("default|post", "default|*", "*|*"):
            await mod.redis.hincrby(key, field, micros)
    return now


async def test_approval_card_shows_cost_with_surcharges_and_what_the_budget_keeps(
    mod: Harness,
) -> None:
    mod.deps.spend = CAPS
    await mod.add_user("mo", Role.MODERATOR)
    await spent(mod, 900_000)  # $0.90 of the $1.00 day cap
    request_id = await mod.pending(
        author="bot",
        payload={"text": "read https://example.com", "media": {"media_ids": ["1", "2"]}},
    )
    async with mod.client() as client:
        await mod.login(client, "mo")
        page = (await client.get(f"/requests/{request_id}")).text
    card = page[page.index('id="cost"') : page.index("</section>", page.index('id="cost"'))]
    assert 'id="cost-total">$0.220<' in card  # $0.200 with a URL + 2 media x $0.010
    assert "post with url $0.200 + media $0.020" in card
    rows = re.findall(r"<tr><td>(.*?)</td>\s*<td>(.*?)</td>\s*<td[^>]*>(.*?)</td></tr>", card)
    assert rows[0][0] == "default · day"
    assert "$0.100" in rows[0][1]
    # The budget check weighs the send the writer charges; media was billed at upload.
    assert rows[0][2] == "over by $0.100: waits"
    assert rows[1][0] == "default · month"
    assert "$9.100" in rows[1][1]
    assert rows[1][2] == "$8.900"
    assert rows[2][0] == "all accounts · day"
    assert "no cap" in rows[2][1]
    assert rows[3][2] == "$98.900"


async def test_accounts_page_charts_the_month_and_only_admins_raise_caps(mod: Harness) -> None:
    mod.deps.spend = CAPS
    await mod.add_user("vi", Role.VIEWER)
    await mod.add_user("ad", Role.ADMIN)
    await spent(mod, 400_000)
    earlier = await spent(mod, 100_000, day_offset=1)
    async with mod.client() as client:
        await mod.login(client, "vi")
        viewer_page = (await client.get("/accounts")).text
        refused = await client.post("/accounts/spend/cap", data={"scope": "default"})
    assert refused.status_code == 403
    assert 'action="/accounts/spend/cap"' not in viewer_page
    charts = re.findall(r'<svg class="spend-chart".*?</svg>', viewer_page, flags=re.S)
    assert len(charts) == 2  # all accounts, and default
    today = Periods.at(mod.clock()).day
    assert f"<title>{today}: $0.400</title>" in charts[1]
    if earlier.month == Periods.at(mod.clock()).month:
        assert f"<title>{earlier.day}: $0.100</title>" in charts[1]
    assert "<script" not in charts[0] + charts[1]
    assert "prices as of 2026-08-13" in viewer_page

    async with mod.client() as client:
        csrf = await mod.login(client, "ad")
        page = (await client.get("/accounts")).text
        assert page.count('action="/accounts/spend/cap"') == 3  # default day+month, total month
        form = {"csrf_token": csrf, "scope": "default", "period": "day"}
        lower = await client.post("/accounts/spend/cap", data={**form, "usd": "0.5"})
        junk = await client.post("/accounts/spend/cap", data={**form, "usd": "lots"})
        nobody = await client.post(
            "/accounts/spend/cap", data={**form, "scope": "ghost", "usd": "5"}
        )
        raised = await client.post("/accounts/spend/cap", data={**form, "usd": "2.5"})
        after = (await client.get("/accounts")).text
        no_csrf = await client.post("/accounts/spend/cap", data={**form, "csrf_token": "x"})
    for response in (lower, junk, nobody, raised):
        assert response.status_code == 303
    assert no_csrf.status_code == 403
    today = Periods.at(mod.clock()).day
    assert await mod.redis.hget(keys.spend_rollup(today), "default|*|cap") == b"2500000"
    assert await mod.redis.xlen(keys.SPEND_CAPS_AUDIT) == 1
    assert "raised to $2.500" in after
    rows = await mod.deps.db.fetchall("SELECT action, target FROM audit_log")
    assert ("spend.cap_raised", "default") in [tuple(r) for r in rows]


async def test_queue_shows_month_to_date_and_accounts_held_for_budget(mod: Harness) -> None:
    mod.deps.spend = CAPS
    await mod.add_user("vi", Role.VIEWER)
    await spent(mod, 1_250_000)
    await mod.redis.hset(
        keys.account_paused("default"), mapping={"reason": "budget", "until": "1", "budget": "x"}
    )
    linked = await mod.pending(author="bot", text="see example.com")
    plain = await mod.pending(author="bot", text="no link. none at all")
    async with mod.client() as client:
        await mod.login(client, "vi")
        page = (await client.get("/queue")).text
        api = await client.get("/api/spend")
    costs = dict(re.findall(r'<tr data-id="([^"]+)">.*?<td class="cost">([^<]*)</td>', page, re.S))
    assert costs == {linked: "$0.200", plain: "$0.015"}
    summary = page[page.index('id="spend-mtd"') :]
    assert "X spend this month <strong>$1.250</strong> of $100.000" in summary
    assert 'id="budget-held"' in page
    assert api.status_code == 200
    scopes = {s["scope"]: s for s in api.json()["scopes"]}
    assert scopes["default"]["held_for_budget"] is True
    assert scopes["default"]["day"] == {
        "spent_usd": 1.25, "cap_usd": 1.0, "left_usd": 0.0, "cap_raised": False,
        "unreadable": False,
    }  # fmt: skip
    assert scopes["total"]["month_by_action_usd"] == {"post": 1.25}


async def test_hostile_ledger_values_never_break_the_pages(mod: Harness) -> None:
    mod.deps.spend = CAPS
    await mod.add_user("vi", Role.VIEWER)
    now = Periods.at(mod.clock())
    await mod.redis.set(keys.spend_rollup(now.day), "not a hash")
    await mod.redis.hset(
        keys.spend_rollup(now.month),
        mapping={"default|*": "1e9", "x": "y", "*|*|cap": "<b>many</b>", "a|*|held": "?"},
    )
    # The old layout's caps hash, read until the rollup folds it in.
    await mod.redis.hset(keys.spend_caps(now.month), "default", "<b>lots</b>")
    await mod.redis.set(keys.account_paused("default"), "junk")
    request_id = await mod.pending(author="bot", text="plain")
    async with mod.client() as client:
        await mod.login(client, "vi")
        pages = [await client.get(p) for p in ("/queue", "/accounts", f"/requests/{request_id}")]
        api = await client.get("/api/spend")
    assert [p.status_code for p in pages] == [200, 200, 200]
    assert api.status_code == 200
    assert "<b>lots</b>" not in "".join(p.text for p in pages)
    assert "<b>many</b>" not in "".join(p.text for p in pages)
    # Today's spend cannot be read: shown so (the writer holds the capped budgets), not $0.
    queue, accounts, detail = (p.text for p in pages)
    summary = queue[queue.index('id="spend-mtd"') :]
    assert "· today unreadable" in summary[: summary.index("</p>")]
    assert ">unreadable</span></td>" in accounts
    assert "spend unreadable" in detail
    scopes = {s["scope"]: s for s in api.json()["scopes"]}
    for scope in ("total", "default"):
        assert scopes[scope]["day"]["spent_usd"] is None
        assert scopes[scope]["day"]["unreadable"] is True
        assert scopes[scope]["month"]["unreadable"] is False
    # Reported once (however many pages read it): counted, logged and listed.
    entries = [json.loads(e) for e in await mod.redis.lrange(keys.QUARANTINE, 0, -1)]
    assert [(e["source"], e["ref"], e["reason"]) for e in entries] == [
        ("spend_rollup", keys.spend_rollup(now.day), "wrong_type")
    ]
    counted = mod.deps.registry.get_sample_value(
        "twitstack_quarantined_total", {"source": "spend_rollup", "reason": "wrong_type"}
    )
    assert counted == 1
