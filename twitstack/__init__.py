"""twitstack: scrape X, moderate writes, execute approved ones exactly once."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("twitstack")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
