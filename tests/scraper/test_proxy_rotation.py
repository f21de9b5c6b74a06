"""Proxy rotation through twscrape's real transport path: a dead proxy is left for the next.

The "good" proxy is the GraphQL fake itself acting as an HTTP forward proxy (it marks requests
that reach it in absolute form); the dead one is a loopback port that refuses connections.
twscrape retries a transport error twice (sleeping 2 s, then 4 s) before cooling the account,
so each of these tests takes several seconds.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from twitstack.scraper.jobs import Job
from twitstack.scraper.proxies import ProxyPool
from twitstack.scraper.twscrape_adapter import TwscrapeAccounts

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _job(proxy_group: str | None = None) -> Job:
    return Job(
        name="watch", kind="search", target="python", interval_s=60.0, limit=1000,
        proxy_group=proxy_group, draft=None,
    )  # fmt: skip


async def test_an_account_on_a_dead_proxy_moves_to_the_next_one(
    fake_x: Any, accounts: TwscrapeAccounts, make_scraper: Any, refused_port: int
) -> None:
    """Connection errors through acc1's proxy fail the run (nothing else can serve it) and move
    acc1 to the next proxy of the pool; the next run goes through that proxy and succeeds."""
    dead = f"http://127.0.0.1:{refused_port}"
    pool = ProxyPool({"default": [dead, fake_x.url]})
    await accounts.remove(["acc2"])
    await accounts.set_proxy("acc1", dead)
    async with make_scraper(proxies=pool) as s:
        with anyio.fail_after(40):
            failed = await s.runner.run(_job())
        assert (failed.status, failed.error_kind, failed.fetched) == ("failed", "no_account", 0)
        assert fake_x.fake.seen() == []  # nothing got through the dead proxy
        acc1 = await accounts.get("acc1")
        assert acc1 is not None
        assert acc1.proxy == fake_x.url
        assert s.metrics.responses.labels(signal="transport")._value.get() == 1

        # twscrape cools an account for 60 s after transport errors; don't wait that out.
        await accounts.reset_locks()
        with anyio.fail_after(30):
            ok = await s.runner.run(_job())
        assert (ok.status, ok.new > 0) == ("ok", True)
        seen = fake_x.fake.seen("SearchTimeline")
        assert seen
        assert all(r.via_proxy and r.account == "t1" for r in seen)


async def test_a_job_proxy_group_rotates_after_a_transport_error(
    fake_x: Any, accounts: TwscrapeAccounts, make_scraper: Any, refused_port: int
) -> None:
    """A job pinned to a proxy group whose current proxy is down fails once; the group moves
    to its next proxy, which the next run uses."""
    dead = f"http://127.0.0.1:{refused_port}"
    pool = ProxyPool({"eu": [dead, fake_x.url]})
    await accounts.remove(["acc2"])
    async with make_scraper(proxies=pool) as s:
        assert pool.current("eu") == dead
        with anyio.fail_after(40):
            failed = await s.runner.run(_job("eu"))
        assert (failed.status, failed.error_kind) == ("failed", "no_account")
        assert pool.current("eu") == fake_x.url
        acc1 = await accounts.get("acc1")
        assert acc1 is not None
        assert acc1.proxy is None  # the job's proxy was at fault, not the account's

        await accounts.reset_locks()  # as above: skip twscrape's 60 s cool-down
        with anyio.fail_after(30):
            ok = await s.runner.run(_job("eu"))
        assert ok.status == "ok"
        assert (await s.store.job_state("watch")).watermark is not None
        seen = fake_x.fake.seen("SearchTimeline")
        assert seen
        assert all(r.via_proxy for r in seen)
