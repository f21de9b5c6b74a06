"""The post a draft quotes, as the scraper's tweet store holds it (if it does), for a preview.

Read-only and best effort: the store is the scraper's file, opened with `mode=ro` so nothing
here can change it, and any trouble (no file, locked, another schema) just means "not in the
store": the page then shows the id and a link, and the moderator opens the post on X.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import anyio

from twitstack.core.logging import get_logger
from twitstack.moderation.thread_view import post_url
from twitstack.writes.validation import is_snowflake_id

_log = get_logger("twitstack.moderation.quoted_posts")
_TIMEOUT_S = 1.0
_MAX_TEXT = 2_000


@dataclass(frozen=True)
class QuotedPost:
    """A quoted post's id and link; its text and author when the store has them."""

    id: str
    url: str
    text: str | None = None
    author: str | None = None


class QuotedPosts:
    """Looks posts up in the scraper's tweet store (a SQLite file), read-only."""

    def __init__(self, store_path: Path | None) -> None:
        self._path = store_path

    async def lookup(self, tweet_id: object) -> QuotedPost | None:
        """The post with that id (text and author if stored); None if it is no post id."""
        if not is_snowflake_id(tweet_id):
            return None
        assert isinstance(tweet_id, str)
        found = None
        if self._path is not None and self._path.exists():
            with anyio.move_on_after(_TIMEOUT_S):
                found = await anyio.to_thread.run_sync(self._read, tweet_id)
        if found is None:
            return QuotedPost(tweet_id, post_url(tweet_id))
        text, author = found
        return QuotedPost(tweet_id, post_url(tweet_id), text[:_MAX_TEXT], author)

    def _read(self, tweet_id: str) -> tuple[str, str | None] | None:
        try:
            with sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=0.5) as db:
                row = db.execute(
                    "SELECT text, author_username FROM tweets WHERE id = ?", (int(tweet_id),)
                ).fetchone()
        except sqlite3.Error as exc:
            _log.info("moderation.quoted_post_unavailable", error=type(exc).__name__)
            return None
        if row is None or not isinstance(row[0], str):
            return None
        return row[0], row[1] if isinstance(row[1], str) else None


def store_path(store_db: Path, data_dir: Path) -> Path:
    """Where the scraper keeps its store: absolute as configured, else under the data dir."""
    return store_db if store_db.is_absolute() else (data_dir / store_db).absolute()
