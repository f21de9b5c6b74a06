"""The ledger's and queue's Lua scripts, loaded from `lua/` and registered on a client.

A script may start with `--#include <name>` lines: each is replaced by `lua/<name>.lua`, which
defines local functions. That is how the writer's one-round-trip steps reuse the ledger's
transition and the rate-limit budget logic without a second copy of either.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

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
