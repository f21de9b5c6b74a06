"""Which transport the writer's workers use: the lean one, unless told or unless it must not.

The workers' per-worker clients take LeanTransport; `[writer] http_transport = "httpx"`, a
proxy named in the environment (httpx would route through it) or an event loop other than
asyncio give them httpx's own transport instead.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from tests.writer.conftest import RunningSandbox
from tests.writer.harness import approved, running_writer, tweet, writer_settings
from twitstack.core.config import Settings
from twitstack.sandbox.xapi.config import FaultKind, FaultSettings
from twitstack.writer.lean_transport import LeanTransport, lean_transport_for
from twitstack.writes.models import ModerationStatus

pytestmark = pytest.mark.anyio


def count_lean_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    original = LeanTransport.handle_async_request

    async def counting(self: LeanTransport, request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return await original(self, request)

    monkeypatch.setattr(LeanTransport, "handle_async_request", counting)
    return seen


@pytest.mark.parametrize(
    "sandbox_config",
    [FaultSettings(rates={FaultKind.COMMIT_THEN_RESET: 0.3, FaultKind.ERROR_503: 0.2}, seed=3)],
    indirect=True,
)
@pytest.mark.parametrize("setting", ["lean", "httpx"])
async def test_the_workers_post_through_the_configured_transport(
    make_settings: Callable[..., Settings],
    redis: Redis,
    sandbox: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
) -> None:
    """Resets after commit and 503s included: every tweet exists once either way."""
    seen = count_lean_requests(monkeypatch)
    settings = writer_settings(
        make_settings, sandbox.base_url, http_transport=setting, transient_attempts=1
    )
    requests = [approved(tweet(f"lean {i}")) for i in range(12)]
    async with running_writer(settings, redis, sandbox) as writer:
        assert writer.service.worker_http == setting
        await writer.push(*requests)
        executed = {ModerationStatus.EXECUTED}
        await writer.wait_states([r.id for r in requests], executed, timeout_s=60)
    counts = sandbox.state.content.post_text_counts()
    assert sorted(counts.values()) == [1] * 12
    posts = seen.count("/2/tweets")
    assert posts >= 12 if setting == "lean" else posts == 0


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "http_proxy", "ALL_PROXY"])
async def test_a_proxy_in_the_environment_keeps_httpx_transport(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "http://127.0.0.1:9")
    assert lean_transport_for(httpx.create_ssl_context()) is None


async def test_without_a_proxy_the_lean_transport_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "api.x.com")  # names no proxy by itself
    assert isinstance(lean_transport_for(httpx.create_ssl_context()), LeanTransport)


def test_off_asyncio_httpx_transport_is_kept() -> None:
    async def pick() -> object:
        return lean_transport_for(httpx.create_ssl_context())

    assert anyio.run(pick, backend="trio") is None
