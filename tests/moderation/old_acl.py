"""Helpers for Accounts page tests: a Redis user with an older ACL, the page as a viewer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from tests.moderation.harness import Harness
from twitstack.moderation.roles import Role
from twitstack.ops.redis_acl import ROLES


@asynccontextmanager
async def moderation_user_without(mod: Harness, pattern: str) -> AsyncIterator[Redis]:
    """A client logged in as the shipped moderation user, less its rules for the keys of
    `pattern` (an ACL file from before the page read those keys)."""
    [role] = [role for role in ROLES if role.user == "twitstack-moderation"]
    rules = [r for r in role.rules if not r.endswith("~" + pattern)]
    assert len(rules) < len(role.rules)
    await mod.redis.execute_command(
        "ACL", "SETUSER", "old-moderation", "reset", "on", ">old-pw", "resetkeys",
        "resetchannels", "-@all", *rules,
    )  # fmt: skip
    kwargs = mod.redis.connection_pool.connection_kwargs
    client = Redis(
        host=kwargs["host"], port=kwargs["port"], username="old-moderation", password="old-pw"
    )
    try:
        yield client
    finally:
        await client.aclose()
        await mod.redis.execute_command("ACL", "DELUSER", "old-moderation")


async def accounts_page(mod: Harness, redis: Redis | None = None) -> tuple[int, str]:
    """GET /accounts as a viewer, the page reading Redis through `redis` if given."""
    if "vi" not in mod.users:
        await mod.add_user("vi", Role.VIEWER)
    async with mod.client() as client:
        await mod.login(client, "vi")
        original = mod.deps.redis
        if redis is not None:
            mod.deps.redis = redis
        try:
            page = await client.get("/accounts")
        finally:
            mod.deps.redis = original
    return page.status_code, page.text
