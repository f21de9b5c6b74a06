"""twitstack: scrape X, moderate writes, execute approved ones exactly once."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("twitstack")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

# Before any module of the package imports them (see the module's docstring).
from twitstack._lean_imports import import_without_console_extras

import_without_console_extras()

__all__ = ["__version__"]
