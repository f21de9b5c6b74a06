"""Handlers of `twitstack x-accounts …` (see x_account_commands for the parsers)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import anyio
import httpx
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from twitstack.core.http_server import serve_asgi
from twitstack.core.redis import open_redis
from twitstack.core.sealing import KeyRingError
from twitstack.core.secrets import aget_secret
from twitstack.writes.token_store import SealedTokenStore, keyring_source
from twitstack.writes.x_accounts import ConnectedAccount, ConnectedAccounts
from twitstack.writes.x_connect import PENDING_TTL_S, ConnectError, XConnector, connect_config
from twitstack.writes.x_oauth import XOAuthClient

if TYPE_CHECKING:
    from twitstack.core.config import Settings

_STARTUP_TIMEOUT_S = 5.0


@dataclass
class _Kit:
    accounts: ConnectedAccounts
    connector: XConnector | None


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@asynccontextmanager
async def _open(settings: Settings, *, connect: bool) -> AsyncIterator[_Kit]:
    writer = settings.writer
    async with (
        open_redis(settings.redis_url, startup_timeout_s=_STARTUP_TIMEOUT_S) as redis,
        httpx.AsyncClient(
            timeout=httpx.Timeout(writer.read_timeout_s, connect=writer.connect_timeout_s)
        ) as http,
    ):
        ring = keyring_source(aget_secret, env=settings.env, data_dir=settings.state_dir)
        accounts = ConnectedAccounts(redis, SealedTokenStore(redis, ring))
        connector = None
        if connect:
            config = await connect_config(writer, aget_secret)
            oauth = XOAuthClient(
                http, api_base=config.api_base, client_id=config.client_id,
                client_secret=config.client_secret,
            )  # fmt: skip
            connector = XConnector(
                redis, accounts, oauth, config, configured=[a.name for a in writer.accounts]
            )
        yield _Kit(accounts, connector)


def _run(main: object, settings: Settings, what: str) -> int:
    try:
        return int(anyio.run(main))  # type: ignore[arg-type]
    except ConnectError as exc:
        print(f"x-accounts {what}: {exc.message}", file=sys.stderr)
        return 1
    except KeyRingError as exc:
        print(f"x-accounts {what}: {exc}", file=sys.stderr)
        return 1
    except (RedisError, OSError) as exc:
        print(f"x-accounts {what}: Redis at {settings.redis_url} is not answering: {exc}",
              file=sys.stderr)  # fmt: skip
        return 1


def connect(args: argparse.Namespace, settings: Settings) -> int:
    """Print the authorize URL, take the redirect back (pasted or on loopback), store."""
    groups = args.scope or ["posting"]
    redirect = args.redirect_uri
    if args.listen is not None:
        redirect = f"http://127.0.0.1:{args.listen}/callback"

    async def main() -> int:
        async with _open(settings, connect=True) as kit:
            assert kit.connector is not None
            started = await kit.connector.start(
                args.name, groups, actor=_actor(), redirect_uri=redirect
            )
            print("Open this URL in a browser signed in to X as the account to connect:")
            print(started.url, flush=True)
            if args.listen is not None:
                query = await _listen(args.listen)
            else:
                query = await anyio.to_thread.run_sync(_paste)
            account, event, warning = await kit.connector.finish(query, actor=_actor())
            verb = "reconnected" if event == "reconnect" else "connected"
            print(f"{verb} @{account.username} (user {account.user_id}) as {account.name}; "
                  f"scopes: {' '.join(account.scopes)}")  # fmt: skip
            if warning is not None:
                # The reconnect stands (exit 0); the old grant is the person's to revoke now.
                print(f"x-accounts connect: {warning}", file=sys.stderr)
            return 0

    return _run(main, settings, "connect")


def _paste() -> dict[str, str]:
    print("Then paste the whole URL your browser was sent to (it holds code= and state=):",
          flush=True)  # fmt: skip
    line = sys.stdin.readline().strip()
    return dict(parse_qsl(urlsplit(line).query))


async def _listen(port: int) -> dict[str, str]:
    """Serve one redirect on 127.0.0.1:PORT/callback; the page tells the person to go back."""
    received: dict[str, str] = {}
    arrived = anyio.Event()

    async def callback(request: Request) -> PlainTextResponse:
        received.update(request.query_params.items())
        arrived.set()
        return PlainTextResponse("twitstack got the answer from X; return to the terminal.")

    app = Starlette(routes=[Route("/callback", callback)])
    with anyio.fail_after(PENDING_TTL_S):
        async with anyio.create_task_group() as tg:
            await tg.start(lambda task_status: serve_asgi(
                app, host="127.0.0.1", port=port, name="x-accounts-callback",
                task_status=task_status,
            ))  # fmt: skip
            print(f"Waiting for X's redirect on http://127.0.0.1:{port}/callback …", flush=True)
            await arrived.wait()
            tg.cancel_scope.cancel()
    return received


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def list_accounts(args: argparse.Namespace, settings: Settings) -> int:
    """Connected accounts, then the TOML-configured ones (TOML labels win)."""

    async def main() -> int:
        async with _open(settings, connect=False) as kit:
            header = ("LABEL", "HANDLE", "USER ID", "AUTH", "SCOPES", "EXPIRES", "REFRESHED",
                      "HEALTH")  # fmt: skip
            rows = [header]
            for account in await kit.accounts.all():
                health = await kit.accounts.health(account.name)
                state = (
                    f"RECONNECT NEEDED: {health.reconnect_reason}"
                    if health.reconnect_needed
                    else "ok"
                )
                rows.append((
                    account.name, f"@{account.username}", account.user_id, account.auth_kind,
                    " ".join(account.scopes), _when(health.expires_at),
                    _when(health.refreshed_at), state,
                ))  # fmt: skip
            for toml in settings.writer.accounts:
                health = await kit.accounts.health(toml.name)
                rows.append((
                    toml.name, "-", toml.user_id, f"{toml.auth} (toml)", "-",
                    _when(health.expires_at), _when(health.refreshed_at),
                    "RECONNECT NEEDED" if health.reconnect_needed else "ok",
                ))  # fmt: skip
            widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
            for row in rows:
                print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
            return 0

    return _run(main, settings, "list")


def _matches(account: ConnectedAccount, wanted: str) -> bool:
    return wanted in (account.name, account.user_id, f"@{account.username}", account.username)


def disconnect(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke at X and remove the credentials."""

    async def main() -> int:
        async with _open(settings, connect=True) as kit:
            assert kit.connector is not None
            found = [a for a in await kit.accounts.all() if _matches(a, args.account)]
            if not found:
                print(f"x-accounts disconnect: no connected account {args.account!r}",
                      file=sys.stderr)  # fmt: skip
                return 2
            account, outcome = await kit.connector.disconnect(found[0].user_id, actor=_actor())
            print(f"disconnected @{account.username} ({account.name}): {outcome}")
            return 0

    return _run(main, settings, "disconnect")


__all__ = ["connect", "disconnect", "list_accounts"]
