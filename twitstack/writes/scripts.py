"""The ledger's and queue's Lua scripts, loaded from `lua/` and registered on a client."""

from __future__ import annotations

from functools import cache
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


@cache
def lua_source(name: str) -> str:
    """The text of `lua/<name>.lua` shipped with the package."""
    return (resources.files("twitstack.writes") / "lua" / f"{name}.lua").read_text("utf-8")


def register(redis: Redis, name: str) -> AsyncScript:
    """A script object that runs by EVALSHA and reloads itself if Redis forgot it."""
    return redis.register_script(lua_source(name))
