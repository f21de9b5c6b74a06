"""Connect, reconnect and disconnect an X account in real Chromium against the fake X, and post
through the connected account on the way (the writer runs on the app's loop)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.moderation.harness import PASSWORD, Harness
from tests.moderation.live import LiveApp, serve_live
from twitstack.core.config import Settings
from twitstack.core.sealing import SealingKeyRing, generate_key_ring
from twitstack.moderation.roles import Role
from twitstack.moderation.x_accounts_ui import XAccountsUi
from twitstack.sandbox.xapi.config import DEFAULT_CLIENT_ID
from twitstack.writes import keys
from twitstack.writes.signing import public_key_to_base64
from twitstack.writes.token_store import SEALING_KEYS_SECRET, SealedTokenStore
from twitstack.writes.x_accounts import ConnectedAccounts

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 15_000
RING = generate_key_ring("k1")

playwright_sync = pytest.importorskip("playwright.sync_api")


async def _setup(harness: Harness) -> dict[str, Any]:
    await harness.add_user("root", Role.ADMIN)
    return {}


def _extra(make_settings: Callable[..., Settings], seen: dict[str, Any]) -> Any:
    """The fake X, a writer with no TOML account, and the Accounts pages' connector."""
    from tests.writer.conftest import RunningSandbox
    from tests.writer.harness import running_writer, writer_settings
    from twitstack.sandbox.xapi.config import XApiSandboxConfig
    from twitstack.sandbox.xapi.server import open_xapi_sandbox

    @asynccontextmanager
    async def extra(harness: Harness) -> AsyncIterator[Any]:
        async with open_xapi_sandbox(XApiSandboxConfig()) as fake:
            settings = writer_settings(
                make_settings, fake.base_url, accounts=[], default_account="brand",
                oauth2_client_id=DEFAULT_CLIENT_ID,
                x_authorize_url=f"{fake.base_url}/i/oauth2/authorize",
                approval_public_keys=[public_key_to_base64(harness.deps.signer.public_key)],
            )  # fmt: skip

            async def ring() -> SealingKeyRing:
                return SealingKeyRing.parse(RING, source="test")

            async def no_secret(name: str) -> str | None:
                return None

            sandbox = RunningSandbox(fake.base_url, fake.state)
            secrets = {SEALING_KEYS_SECRET: RING}
            async with (
                httpx.AsyncClient(timeout=10) as http,
                running_writer(settings, harness.redis, sandbox, secrets=secrets),
            ):
                accounts = ConnectedAccounts(harness.redis, SealedTokenStore(harness.redis, ring))
                harness.deps.x_accounts = XAccountsUi(
                    accounts, settings.writer, harness.redis, http, no_secret
                )
                seen["sandbox"] = sandbox
                yield None

    return extra


@pytest.fixture
def live(
    redis_url: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> Iterator[tuple[LiveApp, dict[str, Any]]]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    seen: dict[str, Any] = {}
    with serve_live(redis_url, tmp_path, _setup, extra=_extra(make_settings, seen)) as app:
        callback = f"{app.base_url}/accounts/x/callback"

        async def point_redirect(harness: Harness) -> None:
            # The redirect URI names the port the live app got, known only now.
            ui = harness.deps.x_accounts
            assert ui is not None
            ui.writer = ui.writer.model_copy(update={"oauth2_redirect_uri": callback})

        app.portal(point_redirect)
        yield app, seen


def _login(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/queue")


def _posts(seen: dict[str, Any]) -> list[tuple[str, str]]:
    posts = seen["sandbox"].state.content.posts.values()
    return [(p.author_id, p.text) for p in posts]


def test_connect_reconnect_post_disconnect_in_chromium(
    live: tuple[LiveApp, dict[str, Any]],
) -> None:
    """An admin connects @twitstack_demo, reconnects it, a post goes out through it, then it
    is disconnected and revoked at X."""
    app, seen = live
    base = app.base_url
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(WAIT_MS)
            _login(page, base)
            page.goto(f"{base}/accounts")
            page.click("text=Connect an X account")
            page.fill("input[name=name]", "brand")
            page.check("input[value=dm_read_back]")
            page.click("button:has-text('Continue to X')")
            # Through the fake X's consent, the public callback, and the same-site forward.
            page.wait_for_url(f"{base}/accounts")
            assert "Connected @twitstack_demo as brand." in page.inner_text("main")
            row = page.locator("tr", has_text="@twitstack_demo")
            assert "dm.read" in row.inner_text()
            assert "ok" in row.inner_text()

            page.click("button:has-text('Reconnect')")
            page.wait_for_url(f"{base}/accounts")
            assert "Reconnected @twitstack_demo as brand." in page.inner_text("main")

            message = {
                "id": "req-connected-1", "action": "tweet", "author": "someone",
                "account": "brand", "payload": {"text": "Posted through a connected account"},
            }  # fmt: skip

            async def push(harness: Harness) -> None:
                await harness.redis.rpush(keys.WRITE_QUEUE, json.dumps(message))

            app.portal(push)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                page.goto(f"{base}/requests/req-connected-1")
                if page.locator("button:has-text('Approve')").count():
                    break
                time.sleep(0.2)
            page.click("button:has-text('Approve')")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not _posts(seen):
                time.sleep(0.1)
            assert _posts(seen) == [("1000", "Posted through a connected account")]

            page.goto(f"{base}/accounts")
            page.click("button:has-text('Disconnect')")
            page.wait_for_url(f"{base}/accounts")
            assert "Disconnected @twitstack_demo (revoked at X)." in page.inner_text("main")
            assert page.locator("tr", has_text="@twitstack_demo").count() == 0
        except Exception:
            print("URL", page.url, page.content()[:3000])
            raise
        finally:
            browser.close()
