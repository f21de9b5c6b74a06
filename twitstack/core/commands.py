"""What command modules share: the handler signature and handlers loaded only when they run."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twitstack.core.config import Settings

Handler = Callable[[argparse.Namespace, "Settings"], int]


def lazy_handler(module: str, name: str) -> Handler:
    """A handler that imports `module` when its command runs, not when the CLI starts.

    Every command module is imported to build `twitstack --help`; keeping their heavy imports
    (twscrape, aioboto3, fakeredis, argon2) behind this keeps `twitstack run --only writer`
    from paying for all of them.
    """

    def handler(args: argparse.Namespace, settings: Settings) -> int:
        run: Handler = getattr(import_module(module), name)
        return run(args, settings)

    handler.__qualname__ = handler.__name__ = f"{module}:{name}"
    return handler
