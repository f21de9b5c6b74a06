"""Fixtures for the scraper: the GraphQL fake on loopback, twscrape wired to it, a moto S3."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from moto.server import ThreadedMotoServer
from redis.asyncio import Redis

from twitstack.core.http_server import serve_asgi
from twitstack.core.metrics import new_registry
from twitstack.sandbox.graphql import GraphQLFake, SynthCorpus, create_app
from twitstack.scraper.archive import TweetArchive, open_archive
from twitstack.scraper.db import open_database
from twitstack.scraper.health import AccountHealth
from twitstack.scraper.metrics import ScraperMetrics
from twitstack.scraper.proxies import ProxyPool
from twitstack.scraper.runner import JobRunner, make_observer
from twitstack.scraper.store import TweetStore
from twitstack.scraper.twscrape_adapter import (
    TwscrapeAccounts,
    TwscrapeClient,
    configure_twscrape,
    set_transport_observer,
)


@dataclass
class FakeX:
    fake: GraphQLFake
    url: str


@pytest.fixture
async def fake_x() -> AsyncIterator[FakeX]:
    """The GraphQL fake served on 127.0.0.1, with twscrape pointed at it."""
    fake = GraphQLFake(SynthCorpus.generate(seed=7, users=12, tweets=240))
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve_asgi(
                create_app(fake), host="127.0.0.1", port=0, name="graphql-fake",
                task_status=task_status,
            )
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        configure_twscrape(graphql_url=url)
        yield FakeX(fake, url)
        tg.cancel_scope.cancel()


@pytest.fixture
async def accounts(tmp_path: Path) -> TwscrapeAccounts:
    """Two cookie accounts; acc1's auth_token is t1, acc2's is t2."""
    pool = TwscrapeAccounts((tmp_path / "accounts.db").absolute())
    await pool.upsert_cookies("acc1", "auth_token=t1; ct0=c1")
    await pool.upsert_cookies("acc2", "auth_token=t2; ct0=c2")
    return pool


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening): a proxy that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def moto_s3() -> Iterator[str]:
    """An S3 (moto server mode) on a free loopback port; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
async def archive(moto_s3: str) -> AsyncIterator[TweetArchive]:
    """A fresh bucket per test: moto keeps one in-process backend across its servers."""
    async with open_archive(
        bucket=f"tweets-{uuid.uuid4().hex[:12]}", prefix="tweets", region="us-east-1",
        endpoint_url=moto_s3, access_key_id="test", secret_access_key="test", attempts=3,
    ) as arch:  # fmt: skip
        yield arch


@dataclass
class Scraper:
    """A runner wired like the service's, for tests to drive."""

    runner: JobRunner
    store: TweetStore
    health: AccountHealth
    accounts: TwscrapeAccounts
    metrics: ScraperMetrics
    client: TwscrapeClient


@pytest.fixture
def make_scraper(tmp_path: Path, accounts: TwscrapeAccounts, redis: Redis) -> Callable[..., Any]:
    """An async context manager factory: `async with make_scraper() as s:`."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def make(
        *, archive: TweetArchive | None = None, holder: str = "a", db: str = "scraper.db",
        lease_ttl_s: float = 30.0, batch_size: int = 500, proxies: ProxyPool | None = None,
    ) -> AsyncIterator[Scraper]:  # fmt: skip
        metrics = ScraperMetrics(new_registry())
        health = AccountHealth(
            accounts, metrics, suspect_window_s=600, probe_screen_name="team",
            scratch_dir=tmp_path / "probes", proxies=proxies,
        )  # fmt: skip
        observer = make_observer(health)
        # Transport errors reach us only through twscrape's log, hence a process-wide hook.
        set_transport_observer(observer)
        client = TwscrapeClient(
            accounts.accounts_db, wait_timeout_s=0.5, wait_interval_s=0.05, observer=observer
        )
        async with open_database(tmp_path / db) as conn:
            store = TweetStore(conn)
            runner = JobRunner(
                client=client, store=store, health=health, metrics=metrics, redis=redis,
                archive=archive, proxies=proxies, lease_ttl_s=lease_ttl_s, holder=holder,
                batch_size=batch_size,
            )  # fmt: skip
            try:
                yield Scraper(runner, store, health, accounts, metrics, client)
            finally:
                set_transport_observer(None)

    return make
