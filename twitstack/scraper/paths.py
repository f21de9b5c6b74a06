"""Where the scraper's files live: the data directory and the paths resolved against it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twitstack.core.config import Settings


def resolve(path: Path, data_dir: Path) -> Path:
    """Absolute paths as given; relative ones under the data directory."""
    return path if path.is_absolute() else (data_dir / path).absolute()


def ensure_state_dir(settings: Settings) -> Path:
    """The data directory, created if missing (a first `accounts add` may precede any daemon)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return settings.state_dir


def accounts_db_path(settings: Settings) -> Path:
    """twscrape's accounts database, absolute (relative paths are a cron trap, twscrape #209)."""
    return resolve(settings.scraper.accounts_db, ensure_state_dir(settings))


def store_db_path(settings: Settings) -> Path:
    """The tweet store's SQLite file."""
    return resolve(settings.scraper.store_db, ensure_state_dir(settings))
