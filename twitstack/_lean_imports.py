"""Import structlog and httpx without the console extras a daemon never uses.

Both libraries import optional packages at import time merely because they are installed:
structlog.dev imports Rich (with Pygments and attrs) for its pretty tracebacks and colorama for
Windows consoles, httpx imports click, Rich and Pygments for its command-line client. In a
daemon that logs JSON lines they would stay resident for nothing (about 5 MiB together), so
the first import of the two runs with those packages hidden. The console renderer imports Rich
itself, on first use, when a developer's terminal asks for coloured tracebacks
(`twitstack.core.logging`); any later `import rich` gets the real package.

Importing this module does it, and only the command line (`twitstack.cli`, every daemon's entry
point) imports it, before any other twitstack module: a program that imports twitstack as a
library (`from twitstack.scraper import ScraperClient`) keeps its own imports untouched.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

CONSOLE_EXTRAS = ("rich", "pygments", "colorama", "click", "better_exceptions")
# httpcore imports trio when it is installed, to pick its locks when running under trio; every
# twitstack process runs on asyncio (redis.asyncio and aiosqlite are asyncio-only), and trio
# with its dependencies (attrs, outcome, sortedcontainers) would cost another 4 MiB.
# structlog imports greenlet, when installed, for its deprecated thread-local context (greenlet
# pulls in libstdc++, ~1 MiB); twitstack binds context with contextvars only.
UNUSED_BACKENDS = ("trio", "greenlet")


@contextmanager
def hidden_modules(*names: str) -> Iterator[None]:
    """Within the block, importing `names` (not yet imported) fails with ImportError."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not found"
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


def import_without_console_extras() -> None:
    """Import structlog, httpx and httpcore (once per process) with the extras above hidden."""
    if "structlog" in sys.modules and "httpx" in sys.modules:
        return
    with hidden_modules(*CONSOLE_EXTRAS, *UNUSED_BACKENDS):
        import httpcore  # noqa: F401
        import httpx  # noqa: F401
        import structlog  # noqa: F401


import_without_console_extras()
