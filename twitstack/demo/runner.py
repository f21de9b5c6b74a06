"""The whole daemon with nothing installed: fakeredis, the fake X API and GraphQL on loopback."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from twitstack.core.config import Settings
from twitstack.core.errors import StartupError
from twitstack.core.http_server import serve_asgi
from twitstack.core.logging import get_logger, register_secret
from twitstack.core.service import ServiceContext
from twitstack.demo.connect import connect_demo_account
from twitstack.demo.fake_redis import BlockingFakeRedis, serve_fake_redis
from twitstack.demo.inbox import NotificationInbox
from twitstack.demo.seed import (
    SAMPLE_REQUESTS,
    scrape_jobs,
    seed_admin,
    seed_requests,
    seed_scraper_accounts,
    share_world,
)
from twitstack.sandbox.graphql import GraphQLFake, SynthCorpus
from twitstack.sandbox.graphql import create_app as create_graphql_app
from twitstack.sandbox.xapi import DEFAULT_BEARER_TOKEN, DEFAULT_CLIENT_ID, open_xapi_sandbox
from twitstack.scraper.twscrape_adapter import configure_twscrape
from twitstack.supervisor import Supervisor, default_catalog, prepare_data_dir, select_services
from twitstack.writes.signing import generate_key_pair

log = get_logger("twitstack.demo")

# The environment variable holding the demo account's token, named by writer.accounts.
TOKEN_SECRET_NAME = "TWITSTACK_DEMO_X_ACCESS_TOKEN"
# The notifier's webhook (the demo's inbox) and its signing key, named by [notifier.webhook].
WEBHOOK_URL_SECRET = "TWITSTACK_DEMO_WEBHOOK_URL"
WEBHOOK_KEY_SECRET = "TWITSTACK_DEMO_WEBHOOK_KEY"
DEMO_USER_ID = "1000"  # the sandbox's default user, @twitstack_demo
# What only the daemon itself talks to stays on loopback whatever `--host` the UI listens
# on: the demo's Redis has no password and holds the approval keys (a UI on 0.0.0.0 must
# not put it on the network), and the scraper accepts only a loopback GraphQL fake.
INTERNAL_HOST = "127.0.0.1"


@dataclass(frozen=True)
class DemoOptions:
    """What `twitstack demo` can be told."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    redis_port: int = 0  # the demo's Redis on TCP, for the CLI (0: any free port)
    scrape_interval_s: float = 60.0
    log_file: Path | None = None
    temporary: bool = False  # data_dir is removed on exit


@dataclass(frozen=True)
class DemoEndpoints:
    """Where the running demo can be reached, and the admin's one-time password."""

    ui_url: str
    metrics_urls: dict[str, str]
    x_api_url: str
    graphql_url: str
    data_dir: Path
    admin_user: str
    admin_password: str
    redis_url: str
    log_file: Path | None
    temporary: bool
    inbox_url: str


def demo_settings(
    options: DemoOptions, *, data_dir: Path, x_api_url: str, graphql_url: str
) -> Settings:
    """Settings for the embedded run: loopback only, keys generated, the fake X as X."""
    private_key, public_key = generate_key_pair()
    register_secret(private_key)
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "api_host": options.host,
        "api_port": options.port,
        "supervisor": {"metrics_host": options.host, "shutdown_grace_s": 5},
        "writer": {
            "x_api_base_url": x_api_url,
            "metrics_port": 0,
            "approval_public_keys": [public_key],
            # The fake answers at once: ambiguous outcomes can be settled quickly.
            "reconcile_grace_s": 5,
            # Accounts → "Connect an X account" signs in at the fake X (public client).
            "oauth2_client_id": DEFAULT_CLIENT_ID,
            "x_authorize_url": f"{x_api_url}/i/oauth2/authorize",
            "oauth2_redirect_uri": f"http://{options.host}:{options.port}/accounts/x/callback",
            "accounts": [
                {
                    "name": "default",
                    "handle": "twitstack_demo",
                    "user_id": DEMO_USER_ID,
                    "auth": "oauth2",
                    "access_token_secret": TOKEN_SECRET_NAME,
                }
            ],
        },
        "moderation": {
            "approval_private_key": private_key,
            # The demo serves plain http on loopback, where browsers drop Secure cookies.
            "secure_cookies": False,
            # "view post" opens the fake X's own page for the post, not x.com.
            "post_url_template": f"{x_api_url}/_sandbox/posts/{{id}}",
        },
        "scraper": {
            "metrics_port": 0,
            "graphql_url_override": graphql_url,
            "account_wait_timeout_s": 5,
            "jobs": scrape_jobs(options.scrape_interval_s),
        },
        # Notifications go to the demo's inbox (a signed webhook on loopback); a request
        # waiting a minute is reported, so a newcomer sees one soon.
        "notifier": {
            "moderation_base_url": f"http://{options.host}:{options.port}",
            "metrics_port": 0,
            "waiting_after_min": 1,
            "check_interval_s": 5,
            "retry_initial_s": 1,
            "retry_max_s": 30,
            "webhook": {"url_secret": WEBHOOK_URL_SECRET, "signing_key_secret": WEBHOOK_KEY_SECRET},
        },
    }
    return Settings(_env_file=None, **values)


async def run_demo(
    options: DemoOptions,
    *,
    announce: Callable[[DemoEndpoints], None],
    task_status: TaskStatus[DemoEndpoints] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Start everything, seed it, announce where to go, and run until SIGINT/SIGTERM."""
    os.environ[TOKEN_SECRET_NAME] = DEFAULT_BEARER_TOKEN
    with (
        _reserved_ui_port(options) as options,
        serve_fake_redis(INTERNAL_HOST, options.redis_port) as (fake_server, redis_url),
    ):
        redis = BlockingFakeRedis(server=fake_server)
        try:
            await _run(options, redis, redis_url, announce=announce, task_status=task_status)
        finally:
            await redis.aclose()


async def _run(
    options: DemoOptions,
    redis: BlockingFakeRedis,
    redis_url: str,
    *,
    announce: Callable[[DemoEndpoints], None],
    task_status: TaskStatus[DemoEndpoints],
) -> None:
    data_dir = options.data_dir
    async with open_xapi_sandbox(host=options.host) as xapi, anyio.create_task_group() as tg:
        # The scraped tweets mention the demo's account (@twitstack_demo, the sandbox's user
        # 1000), and the fake X knows them: its drafts can be posted, as on X.
        corpus = SynthCorpus.generate(seed=2026, users=16, tweets=300, team="twitstack_demo")
        share_world(corpus, xapi.state.content)
        graphql = GraphQLFake(corpus)
        graphql_port: int = await tg.start(
            partial(
                serve_asgi,
                create_graphql_app(graphql),
                host=INTERNAL_HOST,
                port=0,
                name="graphql-sandbox",
            )
        )
        graphql_url = f"http://{INTERNAL_HOST}:{graphql_port}"
        signing_key = secrets.token_urlsafe(24)
        register_secret(signing_key)
        inbox = NotificationInbox(signing_key)
        # Loopback whatever `--host` says: the page lists who needs what, for this machine only.
        inbox_port: int = await tg.start(
            partial(serve_asgi, inbox.app(), host=INTERNAL_HOST, port=0, name="demo-inbox")
        )
        register_secret(inbox.token)
        inbox_url = f"http://{INTERNAL_HOST}:{inbox_port}/?token={inbox.token}"
        os.environ[WEBHOOK_URL_SECRET] = f"http://{INTERNAL_HOST}:{inbox_port}/hook"
        os.environ[WEBHOOK_KEY_SECRET] = signing_key
        settings = demo_settings(
            options, data_dir=data_dir, x_api_url=xapi.base_url, graphql_url=graphql_url
        )
        prepare_data_dir(settings)
        admin_password = secrets.token_urlsafe(12)
        register_secret(admin_password)
        await seed_admin(settings, "admin", admin_password)
        # twscrape logs through loguru to stderr until told otherwise: route it to our logs
        # before the seed's first twscrape call, as the scraper does when it starts.
        configure_twscrape(graphql_url=graphql_url)
        await seed_scraper_accounts(settings)
        await seed_requests(redis, SAMPLE_REQUESTS)
        connected = await connect_demo_account(settings, redis)
        log.info("demo.x_account_connected", account=connected.name, handle=connected.username)

        context = ServiceContext(settings=settings, redis=redis, data_dir=settings.state_dir)
        catalog = default_catalog()
        services = [catalog[name](context) for name in select_services(catalog, None, settings)]
        supervisor = Supervisor(services, settings.supervisor, metrics_host=options.host)
        async with anyio.create_task_group() as daemon:
            # Returns once the supervisor has shut down (SIGINT/SIGTERM, as with `run`).
            await daemon.start(supervisor.run)
            endpoints = DemoEndpoints(
                ui_url=f"http://{options.host}:{_moderation_port(services, options.port)}/",
                metrics_urls={
                    name: f"http://{options.host}:{port}/metrics"
                    for name, port in supervisor.metrics_ports.items()
                },
                x_api_url=xapi.base_url,
                graphql_url=graphql_url,
                data_dir=data_dir,
                admin_user="admin",
                admin_password=admin_password,
                redis_url=redis_url,
                log_file=options.log_file,
                temporary=options.temporary,
                inbox_url=inbox_url,
            )
            announce(endpoints)
            task_status.started(endpoints)
        tg.cancel_scope.cancel()


@contextmanager
def _reserved_ui_port(options: DemoOptions) -> Iterator[DemoOptions]:
    """`options` with the UI's port chosen now if it is 0 (any free port), and held.

    The UI's links (the notifier's, the OAuth redirect, the banner's) are settings made
    before the UI listens, so they need the port first. The port is held by a socket bound
    but not listening, with SO_REUSEADDR as the UI's own: the UI can still bind it, while
    the OS hands it to no one else for the demo's life.
    """
    if options.port != 0:
        yield options
        return
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind((options.host, 0))
        except OSError as exc:
            raise StartupError(
                f"moderation: cannot listen on {options.host}: {exc.strerror}"
            ) from None
        yield replace(options, port=int(holder.getsockname()[1]))


def _moderation_port(services: list[Any], configured: int) -> int:
    for service in services:
        if service.name == "moderation" and getattr(service, "bound_port", None):
            return int(service.bound_port)
    return configured
