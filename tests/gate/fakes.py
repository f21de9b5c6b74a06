"""`python -m tests.gate.fakes`: the fake X API and the GraphQL fake in one child process.

Prints one JSON line `{"xapi": PORT, "graphql": PORT}` once both listen, then serves until
SIGTERM. The X fake's own duplicate guard is switched off on purpose: X would answer a second
identical post with 403, which would hide a double send from the per-text counts; with the
guard off, every send the writer makes is counted, so "0 duplicates" is the writer's doing.
Rate limits on posts and DMs start unlimited; the scenario adds a 429 burst through
`/_sandbox/ratelimits`.
"""

from __future__ import annotations

import json
import signal
import sys
from functools import partial

import anyio

from twitstack.core.http_server import serve_asgi
from twitstack.sandbox.graphql import GraphQLFake, SynthCorpus
from twitstack.sandbox.graphql import create_app as create_graphql_app
from twitstack.sandbox.xapi.app import create_xapi_app
from twitstack.sandbox.xapi.config import Endpoint, XApiSandboxConfig


def xapi_config() -> XApiSandboxConfig:
    """No duplicate guard, no limits on the write endpoints (see the module docstring)."""
    return XApiSandboxConfig(
        rate_limits={Endpoint.CREATE_TWEET: (), Endpoint.CREATE_DM: ()},
        duplicate_window_s=0,
        duplicate_lookback_posts=0,
    )


async def serve() -> None:
    """Serve both fakes on free loopback ports until SIGTERM or SIGINT."""
    graphql = GraphQLFake(SynthCorpus.generate(seed=7, users=12, tweets=60))
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with anyio.create_task_group() as tg:
            xapi_port = await tg.start(
                partial(serve_asgi, create_xapi_app(xapi_config()), host="127.0.0.1", port=0,
                        name="gate-xapi")
            )  # fmt: skip
            graphql_port = await tg.start(
                partial(serve_asgi, create_graphql_app(graphql), host="127.0.0.1", port=0,
                        name="gate-graphql")
            )  # fmt: skip
            print(json.dumps({"xapi": xapi_port, "graphql": graphql_port}), flush=True)
            async for _ in signals:
                break
            tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(serve)
    sys.exit(0)
