"""An in-process Redis for the demo: fakeredis, with blocking reads that really block.

fakeredis answers BLMOVE and XREAD BLOCK at once when there is nothing to read, which would
turn the writer's and moderation's waits into busy loops; these overrides poll instead.
"""

from __future__ import annotations

from typing import Any

import anyio
import fakeredis

_POLL_S = 0.05  # how often a blocked read looks again; the demo's latency floor


class BlockingFakeRedis(fakeredis.FakeAsyncRedis):
    """fakeredis whose BLMOVE and XREAD BLOCK wait for data like a real server."""

    async def blmove(
        self,
        first_list: Any,
        second_list: Any,
        timeout: float,
        src: str = "LEFT",
        dest: str = "RIGHT",
    ) -> Any:
        deadline = None if not timeout else anyio.current_time() + float(timeout)
        while True:
            moved = await self.lmove(first_list, second_list, src, dest)
            if moved is not None or (deadline is not None and anyio.current_time() >= deadline):
                return moved
            await anyio.sleep(_POLL_S)

    async def xread(  # type: ignore[override]  # same call shape, polls instead of blocking
        self, streams: Any, count: int | None = None, block: int | None = None, **kwargs: Any
    ) -> Any:
        deadline = None if not block else anyio.current_time() + block / 1000
        while True:
            reply = await super().xread(streams, count=count, **kwargs)
            if (
                reply
                or block is None
                or (deadline is not None and anyio.current_time() >= deadline)
            ):
                return reply
            await anyio.sleep(_POLL_S)
