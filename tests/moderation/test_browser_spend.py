"""X spend in real Chromium: the Accounts chart draws, the card prices a request, an admin
raises a cap through the form and the page shows it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.moderation.harness import PASSWORD, Harness
from tests.moderation.live import LiveApp, serve_live
from twitstack.core.sections.spend import SpendSettings
from twitstack.moderation.roles import Role
from twitstack.writes import keys
from twitstack.writes.spend import Periods, days_of_month

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 15_000

playwright_sync = pytest.importorskip("playwright.sync_api")


async def _setup(harness: Harness) -> dict[str, Any]:
    harness.deps.spend = SpendSettings.model_validate(
        {"accounts": {"default": {"daily_usd": 1.0, "monthly_usd": 20.0}}}
    )
    await harness.add_user("ada", Role.ADMIN)
    now = Periods.at(harness.clock())
    for period in (now.day, now.month):
        for field in ("default|post_with_url", "default|*", "*|*"):
            await harness.redis.hincrby(keys.spend_rollup(period), field, 800_000)
    request_id = await harness.pending(author="bot", text="our launch post https://example.com")
    return {"request_id": request_id, "month": now.month}


@pytest.fixture
def live(redis_url: str, tmp_path: Path) -> Iterator[LiveApp]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    with serve_live(redis_url, tmp_path, _setup) as app:
        yield app


def test_accounts_chart_card_cost_and_a_cap_raise_in_chromium(live: LiveApp) -> None:
    base = live.base_url
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            # The chart is inline SVG: no script, stylesheet or image request may fail for it.
            failed: list[str] = []
            page.on(
                "response",
                lambda r: (
                    failed.append(r.url)
                    if r.status >= 400 and not r.url.endswith("/favicon.ico")
                    else None
                ),
            )
            page.goto(f"{base}/login")
            page.fill("input[name=username]", "ada")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/queue")
            assert "X spend this month $0.800" in page.locator("#spend-mtd").inner_text()

            page.goto(f"{base}/requests/{live.info['request_id']}")
            card = page.locator("#cost")
            assert card.locator("#cost-total").inner_text() == "$0.200"
            assert "over by $0.000" not in card.inner_text()
            rows = card.locator("#cost-budgets tbody tr")
            assert rows.nth(0).inner_text().split("\t")[-1] == "$0.000"  # $1 - $0.80 - $0.20

            page.goto(f"{base}/accounts")
            chart = page.locator('.spend[data-scope="default"] svg.spend-chart')
            box = chart.bounding_box()
            assert box is not None
            assert box["width"] > 100
            assert box["height"] > 20
            assert chart.locator("rect").count() == len(days_of_month(live.info["month"]))
            tallest = max(
                float(chart.locator("rect").nth(i).get_attribute("height") or 0)
                for i in range(chart.locator("rect").count())
            )
            assert tallest > 0
            row = page.locator('.spend[data-scope="default"] tbody tr').first
            row.locator("input[name=usd]").fill("3")
            row.locator("button[type=submit]").click()
            page.wait_for_url(f"{base}/accounts")
            assert "default: day cap raised to $3.000." in page.content()
            left = page.locator('.spend[data-scope="default"] tbody tr').first.locator("td.left")
            assert left.inner_text() == "$2.200"
            assert failed == []
        finally:
            browser.close()
