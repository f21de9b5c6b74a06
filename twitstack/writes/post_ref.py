"""A post named by a person: its X id, or its URL on x.com or twitter.com (`/status/<id>`)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from twitstack.writes.errors import PayloadError

_ID = re.compile(r"[0-9]{1,19}")
# X serves posts on these hosts; any other site's URL is refused rather than guessed at.
_HOSTS = frozenset(
    {
        "x.com",
        "www.x.com",
        "mobile.x.com",
        "twitter.com",
        "www.twitter.com",
        "mobile.twitter.com",
    }
)
_STATUS_PATH = re.compile(r"/(?:[A-Za-z0-9_]{1,15}|i(?:/web)?)/status(?:es)?/([0-9]{1,19})/?")
MAX_REF_CHARS = 300


def parse_post_ref(value: str, *, field: str = "payload.quote_tweet_id") -> str:
    """The post id in `value` (an id or an x.com / twitter.com status URL); PayloadError if none.

    `https://x.com/someone/status/123?s=20` and `twitter.com/i/web/status/123` both give "123".
    """
    text = value.strip()
    if _ID.fullmatch(text):
        return text
    if len(text) <= MAX_REF_CHARS:
        full = text if "://" in text else f"https://{text}"
        parts = urlsplit(full)
        host = (parts.hostname or "").lower()
        found = _STATUS_PATH.fullmatch(parts.path)
        if parts.scheme in ("http", "https") and host in _HOSTS and found is not None:
            return found.group(1)
    shown = text if len(text) <= 80 else text[:77] + "..."
    raise PayloadError(
        field,
        "expected a post id (digits) or a post URL like https://x.com/user/status/123 "
        f"(x.com or twitter.com), found {shown!r}",
    )
