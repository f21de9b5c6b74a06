"""A short-lived cache of request lists, dropped as soon as the history projection changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio

V = TypeVar("V")
Clock = Callable[[], float]


@dataclass(frozen=True)
class RenderedList:
    """One page of a list as sent: its body (HTML rows or JSON) and the pager's numbers."""

    body: str
    total: int
    pages: int


class ListCache(Generic[V]):
    """Values keyed by what a list shows, valid for one projection generation and `ttl_s`.

    Every change to the `requests` table bumps the ingester's generation, so a cached list is
    never older than the data it came from; `ttl_s` only bounds how stale relative times
    ("3m ago") may get. The generation is read *before* querying and the result stored under
    it, so a query racing a commit is never served afterwards. One caller computes a missing
    key while the others wait for it: twenty moderators polling the queue cost one query.
    """

    def __init__(
        self,
        clock: Clock,
        generation: Callable[[], int],
        *,
        ttl_s: float = 1.0,
        max_entries: int = 256,
    ) -> None:
        self._clock = clock
        self._generation = generation
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[Hashable, tuple[int, float, V]] = {}
        self._computing: dict[Hashable, anyio.Event] = {}
        self.computed = 0

    def get(self, key: Hashable) -> V | None:
        """The fresh value for `key`, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        generation, stored_at, value = entry
        if generation == self._generation() and self._clock() - stored_at < self._ttl_s:
            return value
        del self._entries[key]
        return None

    async def fetch(self, key: Hashable, compute: Callable[[], Awaitable[V]]) -> V:
        """The fresh value for `key`, computing it (once, however many callers ask) if needed."""
        value = self.get(key)
        if value is not None:
            return value
        running = self._computing.get(key)
        if running is not None:
            await running.wait()
            value = self.get(key)
            if value is not None:
                return value
            # The computation failed or the data changed meanwhile: compute our own below.
        done = anyio.Event()
        self._computing.setdefault(key, done)
        try:
            generation = self._generation()
            value = await compute()
            self.computed += 1
            self._put(key, value, generation)
            return value
        finally:
            if self._computing.get(key) is done:
                del self._computing[key]
            done.set()

    def _put(self, key: Hashable, value: V, generation: int) -> None:
        if generation != self._generation():
            return  # the data changed while we were querying: do not keep the result
        if len(self._entries) >= self._max_entries:
            # Keys come from URLs, so their number is bounded here, oldest first out.
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (generation, self._clock(), value)
