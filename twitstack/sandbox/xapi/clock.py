"""The sandbox's injectable clock: wall time plus an offset tests can advance, or a frozen time."""

from __future__ import annotations

import time


class SandboxClock:
    """Seconds since the epoch as the fake X API sees them.

    Rate-limit windows, token expiry, snowflake ids and duplicate windows all read this clock,
    so a test can jump past a 15-minute window with `advance(900)` instead of waiting. A frozen
    clock only moves when advanced, which makes header values exact in tests; an unfrozen one
    follows the wall clock (plus any advance) for demos and dry runs.
    """

    def __init__(self, *, start: float | None = None, frozen: bool = False) -> None:
        self._frozen = frozen
        self._base = time.time() if start is None else start
        # Offset of the sandbox's time from the wall clock (unfrozen) or the frozen instant.
        self._offset = 0.0 if frozen or start is None else start - time.time()

    @property
    def frozen(self) -> bool:
        """True when time only moves through `advance()`."""
        return self._frozen

    def now(self) -> float:
        """The sandbox's current time, seconds since the Unix epoch."""
        if self._frozen:
            return self._base + self._offset
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """Move time forward by `seconds` (never backwards) and return the new time."""
        if seconds < 0:
            raise ValueError(f"the sandbox clock only moves forward; got {seconds} s")
        self._offset += seconds
        return self.now()
