"""Is a post or DM read back from X exactly what a request sent? (reconciliation's text test)

X rewrites a text on the way back in three ways only, and each is undone exactly once:
`&`, `<` and `>` come back HTML-escaped (nothing else: `&copy;` typed is `&amp;copy;` read
back), every URL is replaced by a t.co link (its `expanded_url` is in the entities when asked
for), and a reply's @mentions may be prepended or a media link appended. Everything else —
whitespace included — must be equal: two requests differing only there are different posts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from twitstack.writes.text import nfc

URL_TOKEN = "\u27e8url\u27e9"  # a marker no tweet text is expected to contain
_X_ESCAPES = re.compile(r"&(amp|lt|gt);")
_UNESCAPED = {"amp": "&", "lt": "<", "gt": ">"}
_LEADING_MENTIONS = re.compile(r"^(?:@\w{1,15} )+")
_TCO = "https://t.co/"


def unescape_read_back(text: str) -> str:
    """Undo X's escaping of a read-back text: `&amp;` `&lt;` `&gt;`, in one pass, nothing else.

    One pass means `&amp;amp;` (a sent `&amp;`) becomes `&amp;`, never `&`.
    """
    return _X_ESCAPES.sub(lambda found: _UNESCAPED[found.group(1)], text)


def _fold_urls(text: str) -> tuple[str, list[str]]:
    """`text` with every URL (or bare domain) replaced by URL_TOKEN, and those URLs in order."""
    from twitter_text import extract_urls_with_indices  # ~16 MiB: on first use, not at start

    found = sorted(extract_urls_with_indices(text), key=lambda e: e["indices"][0])
    pieces, urls, cursor = [], [], 0
    for entity in found:
        start, end = entity["indices"]
        pieces += [text[cursor:start], URL_TOKEN]
        urls.append(str(entity["url"]))
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces), urls


def same_url(typed: str, expanded: str) -> bool:
    """True if X's `expanded_url` stands for the URL as typed (scheme added, host's case)."""
    return _url_key(typed) == _url_key(expanded)


def _url_key(url: str) -> tuple[str, str, str]:
    full = url if "://" in url else f"http://{url}"
    parts = urlsplit(full)
    rest = full.split("://", 1)[1][len(parts.netloc) :].rstrip("/")
    return parts.scheme.lower(), parts.netloc.lower(), rest


@dataclass(frozen=True, slots=True)
class ObservedText:
    """A read-back text with X's escaping undone and its links folded to URL_TOKEN.

    `urls` are the links' targets in order (a t.co link's `expanded_url`, any other link
    itself), or None when a t.co link's target is unknown (X gave no entities for it).
    """

    folded: str
    urls: tuple[str, ...] | None
    # Media items the entities list (entries with a `media_key`); None without entities.
    media_items: int | None = None

    @classmethod
    def parse(cls, text: str, entities: Mapping[str, Any] | None) -> ObservedText:
        """From the `text` and `entities` of one tweet or DM event as X returned them."""
        folded, links = _fold_urls(nfc(unescape_read_back(text)))
        expanded: dict[str, str] = {}
        media_keys: set[str] = set()
        for entry in (entities or {}).get("urls") or []:
            if isinstance(entry, Mapping):
                if isinstance(entry.get("media_key"), str):
                    media_keys.add(entry["media_key"])
                url, target = entry.get("url"), entry.get("expanded_url")
                if isinstance(url, str) and isinstance(target, str):
                    expanded[url] = target
        media_items = None if entities is None else len(media_keys)
        urls: list[str] = []
        for link in links:
            if link in expanded:
                urls.append(expanded[link])
            elif not link.startswith(_TCO):
                urls.append(link)  # shown as typed (a DM read-back): it is its own target
            else:
                # a t.co link X did not expand: unknown target
                return cls(folded, None, media_items)
        return cls(folded, tuple(urls), media_items)


def text_matches(sent: str, observed: ObservedText, *, media: int | None = None) -> bool:
    """True if `observed` is what posting `sent` (with `media` items attached) produces on X.

    With `media` given and entities read back, the number of media items must agree too: a
    post with two photos is not the one a text-only request (or a four-photo one) made.
    """
    if media is not None and observed.media_items is not None and observed.media_items != media:
        return False
    want, want_urls = _fold_urls(nfc(sent))
    got, appended = observed.folded, 0
    if got != want and not want.startswith("@"):
        got = _LEADING_MENTIONS.sub("", got)  # the @mentions X prepends to a reply
    # Bounded: each pass removes one link X appended (attached media, a quoted tweet).
    while got != want and got.endswith(URL_TOKEN) and got.count(URL_TOKEN) > want.count(URL_TOKEN):
        got = got[: -len(URL_TOKEN)].removesuffix(" ")
        appended += 1
    if got != want:
        return False
    if media and not appended:
        return False  # X always appends a link to a post with media
    if observed.urls is None:
        return True  # X gave no expanded URLs: the text alone decides
    listed = observed.urls[: len(observed.urls) - appended]
    return len(listed) == len(want_urls) and all(
        same_url(typed, expanded) for typed, expanded in zip(want_urls, listed, strict=True)
    )
