"""The ledger's and queue's Lua scripts, loaded from `lua/` and registered on a client.

A script may start with `--#include <name>` lines: each is replaced by `lua/<name>.lua`, which
defines local functions. That is how the writer's one-round-trip steps reuse the ledger's
transition and the rate-limit budget logic without a second copy of either.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

_INCLUDE = "--#include "


@cache
def lua_source(name: str) -> str:
    """The text of `lua/<name>.lua` shipped with the package, its includes expanded."""
    text = (resources.files("twitstack.writes") / "lua" / f"{name}.lua").read_text("utf-8")
    lines = [
        lua_source(line[len(_INCLUDE) :].strip()) if line.startswith(_INCLUDE) else line
        for line in text.splitlines()
    ]
    return "\n".join(lines) + "\n"


def register(redis: Redis, name: str) -> AsyncScript:
    """A script object that runs by EVALSHA and reloads itself if Redis forgot it."""
    return redis.register_script(lua_source(name))


async def run_once(
    redis: Redis, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]
) -> Any:
    """Run `script` by EVALSHA and never send it a second time once it may have run.

    The client retries a command whose connection failed or timed out (right for reads and
    for idempotent writes). A script whose reply was lost may have run in full: sent again,
    it runs twice, and the writer's steps are not idempotent (a second settle gives back the
    in-flight reservation again; a second begin finds its own `sending` and reads as someone
    else's). Here such an error reaches the caller, who treats the outcome as unknown, as
    after a crash. Only NOSCRIPT (Redis ran nothing) sends it again, once loaded.
    """
    pool = redis.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        try:
            return await _evalsha(conn, script.sha, keys, args)
        except NoScriptError:
            script.sha = await redis.script_load(script.script)
            return await _evalsha(conn, script.sha, keys, args)
    except ResponseError:
        raise  # the script's own error: the connection is in step
    except BaseException:
        # A reply may still be on its way (cancelled mid-read, timed out): this connection
        # must not hand it to the next command. Shielded: anyio cancels again at every await.
        with anyio.CancelScope(shield=True):
            await conn.disconnect(nowait=True)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await pool.release(conn)


async def _evalsha(conn: Any, sha: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    await conn.send_command("EVALSHA", sha, len(keys), *keys, *args)
    return await conn.read_response()
