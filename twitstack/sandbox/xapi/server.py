"""Serve the fake X API on loopback for tests, the demo and dry runs: `open_xapi_sandbox()`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import anyio

from twitstack.core.http_server import serve_asgi
from twitstack.sandbox.xapi.app import create_xapi_app
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.sandbox.xapi.state import XApiState


@dataclass(frozen=True)
class XApiSandbox:
    """A running fake: where to reach it, and its state for in-process inspection."""

    base_url: str
    port: int
    state: XApiState


@asynccontextmanager
async def open_xapi_sandbox(
    config: XApiSandboxConfig | None = None,
    *,
    state: XApiState | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[XApiSandbox]:
    """Serve a fake X API until the block exits; port 0 picks a free port."""
    state = state if state is not None else XApiState(config)
    app = create_xapi_app(state=state)
    async with anyio.create_task_group() as tg:
        bound: int = await tg.start(
            partial(serve_asgi, app, host=host, port=port, name="xapi-sandbox")
        )
        try:
            yield XApiSandbox(base_url=f"http://{host}:{bound}", port=bound, state=state)
        finally:
            tg.cancel_scope.cancel()
