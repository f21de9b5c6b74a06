"""Which messages of this consumer's processing list a worker is actually holding."""

from __future__ import annotations

from collections import Counter

from twitstack.writes.queue import ReliableQueue


class InFlight:
    """Counts the messages workers hold, to find the ones nobody holds.

    A BLMOVE that Redis executed but whose reply was lost (Redis died mid-command) leaves a
    message in our processing list that no worker knows about. Other consumers only recover it
    once our heartbeat lapses, which never happens while we run; so we hand such orphans back
    ourselves. A message counts as orphaned only if two passes in a row saw it unheld: a worker
    registers what it took within microseconds, so this never races a live take.
    """

    def __init__(self) -> None:
        self._held: Counter[bytes] = Counter()
        self._suspects: Counter[bytes] = Counter()

    def hold(self, raw: bytes) -> None:
        """A worker took `raw` (call right after the take returns)."""
        self._held[raw] += 1

    def drop(self, raw: bytes) -> None:
        """The worker is done with `raw` (acked, dead-lettered or released)."""
        self._held[raw] -= 1
        if self._held[raw] <= 0:
            del self._held[raw]

    def __len__(self) -> int:
        return self._held.total()

    async def reclaim(self, queue: ReliableQueue) -> int:
        """Give back to the queue the messages found unheld twice in a row; how many."""
        unheld = Counter(await queue.in_flight()) - self._held
        orphans = unheld & self._suspects
        self._suspects = unheld - orphans
        released = 0
        for raw, count in orphans.items():
            for _ in range(count):
                released += await queue.release(raw)
        return released
