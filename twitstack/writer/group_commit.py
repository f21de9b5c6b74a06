"""Group commit: concurrent calls of one step coalesced into one batched call.

A call adds its item to the pending batch. When no batched call is in flight, one starts at
once (an idle writer waits for nothing: no timer, no window); calls that arrive while one is in
flight go together in the next, up to `max_batch` items. Every caller gets its own result or its
own exception; an exception of the batched call itself (Redis gone, the connection dropped) is
raised to every caller in the batch, as each would have seen it alone. A caller cancelled before
its batch went out is left out of it.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _own(exc: BaseException) -> BaseException:
    """A copy of `exc` for one caller (its traceback is then that caller's alone)."""
    try:
        return copy.copy(exc)
    except Exception:  # an exception that cannot be copied is shared instead
        return exc


class GroupCommit(Generic[T, R]):
    """Coalesces `submit` calls into calls of `run`: a list of items in, one outcome per item
    out (its result, or the exception that item ends with)."""

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
        *,
        max_batch: int,
        on_batch: Callable[[int], None] | None = None,
    ):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run = run
        self._max = max_batch
        self._on_batch = on_batch  # told each batch's size as it goes out (a metric)
        self._pending: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0  # batched calls made (for tests and the bench)
        self.items = 0  # items they carried

    async def submit(self, item: T) -> R:
        """`item`'s outcome, from the next batched call that carries it."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None:
            # Its own task, not the caller's: a caller cancelled mid-call cannot strand the
            # others waiting on the same batch.
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch: list[tuple[T, asyncio.Future[R]]] = []
                while self._pending and len(batch) < self._max:
                    item, future = self._pending.popleft()
                    if not future.done():
                        batch.append((item, future))
                if batch:
                    await self._call(batch)
        finally:
            self._flusher = None
            # Only a cancelled flusher leaves items behind: they end as cancelled.
            while self._pending:
                self._pending.popleft()[1].cancel()

    async def _call(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batches += 1
        self.items += len(batch)
        if self._on_batch is not None:
            self._on_batch(len(batch))
        try:
            outcomes = await self._run([item for item, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(outcomes)} outcomes for a batch of {len(batch)}")
        except BaseException as exc:
            for _, future in batch:
                if future.done():
                    continue
                if isinstance(exc, Exception):
                    future.set_exception(_own(exc))
                else:
                    future.cancel()  # the flusher itself was cancelled (shutdown)
            if isinstance(exc, Exception):
                return
            raise
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
