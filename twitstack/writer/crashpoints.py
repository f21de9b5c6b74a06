"""Test-only crash points: kill -9 this process at a named step of the effectively-once protocol.

Inert unless both `TWITSTACK_TESTING=1` and `TWITSTACK_WRITER_CRASH_AT=<point>:<n>` are set in
the environment at start-up; the process then SIGKILLs itself the n-th time it reaches <point>.
Points: after_take (message in the processing list), after_media_uploaded (a file is on X,
the request still `approved`), after_sending (`sending` committed),
after_x_accepted (X answered 2xx, not yet recorded), after_executed (recorded, not yet acked);
for threads also after_part_sending (a part committed in flight, not yet sent) and
after_part_posted (a part's id recorded, the next not yet begun).
"""

from __future__ import annotations

import os
import signal

POINTS = frozenset(
    {
        "after_take",
        "after_media_uploaded",
        "after_sending",
        "after_x_accepted",
        "after_executed",
        "after_part_sending",
        "after_part_posted",
    }
)


def _configured() -> tuple[str, int] | None:
    if os.environ.get("TWITSTACK_TESTING") != "1":
        return None
    point, _, nth = os.environ.get("TWITSTACK_WRITER_CRASH_AT", "").partition(":")
    if point not in POINTS:
        return None
    return point, int(nth or "1")


_TARGET = _configured()
_hits = 0


def crash_point(name: str) -> None:
    """Die here, as kill -9 would, if the test environment asked for it."""
    global _hits
    if _TARGET is None or _TARGET[0] != name:
        return
    _hits += 1
    if _hits >= _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)
