"""Showing producer-supplied data safely: links only to X over https, bidi controls neutralised."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup

# Where a producer's link may point. Anything else is shown as text, never as a link:
# a moderator clicking "open on X" must land on X.
X_HOSTS = frozenset(
    {
        "x.com",
        "www.x.com",
        "mobile.x.com",
        "twitter.com",
        "www.twitter.com",
        "mobile.twitter.com",
        "t.co",
    }
)
# Embeddings, overrides, isolates and marks: each can reorder the text around it (the
# "Trojan Source" trick), so a producer's field could make the page say something else.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def x_link(url: Any) -> str | None:
    """`url` if it is an https link to one of X's hosts (no credentials, no odd port), else None."""
    if not isinstance(url, str) or len(url) > 2048 or _BIDI_CONTROLS.search(url):
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or parts.username is not None or port not in (None, 443):
        return None
    if (parts.hostname or "") not in X_HOSTS or any(c.isspace() for c in url.strip()):
        return None
    return parts.geturl()


def _visible(match: re.Match[str]) -> str:
    return f"[U+{ord(match.group()):04X}]"


@dataclass(frozen=True, slots=True)
class CheckedHtml:
    """HTML one of our autoescaping templates rendered, embedded in another page as is.

    Every `{{ ... }}` in it already passed `neutralise_bidi` and the templates' own text has no
    bidi controls, so the embedding page need not scan it again (the queue's rows are ~35 KB,
    rendered once and embedded on every poll). Not a Markup: it cannot be concatenated with
    other text, so nothing unchecked can ride along inside it.
    """

    html: str

    def __html__(self) -> str:
        return self.html


def neutralise_bidi(value: Any) -> Any:
    """Every `{{ ... }}` output passes here (the environment's finalize): bidi controls become
    visible `[U+202E]` markers, so no field can reorder the page around it."""
    if not isinstance(value, str) or _BIDI_CONTROLS.search(value) is None:
        # (the common case: no control in it, so the value is returned as it came)
        return value
    if isinstance(value, Markup):
        return Markup(_BIDI_CONTROLS.sub(_visible, str(value)))
    return _BIDI_CONTROLS.sub(_visible, value)
