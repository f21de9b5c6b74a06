"""Tweet text rules (weighted length per X) and text normalisation for reconciliation matching."""

from __future__ import annotations

import html
import re
import unicodedata

from twitter_text import extract_urls_with_indices, parse_tweet
from twitter_text.regexp.invalid_chars import invalid_chars

MAX_TWEET_WEIGHTED_LENGTH = 280
# X's counting rules allow long URLs (each counts 23), but nothing real comes near this; it
# bounds the work parse_tweet does on hostile input.
MAX_TWEET_RAW_CHARS = 10_000
URL_TOKEN = "\u27e8url\u27e9"  # a marker no tweet text is expected to contain
_WHITESPACE = re.compile(r"\s+")
_LEADING_MENTIONS = re.compile(r"^(?:@\w{1,15}\s+)+")


def nfc(text: str) -> str:
    """The NFC form X normalises every text to before counting and storing it."""
    return unicodedata.normalize("NFC", text)


def tweet_weighted_length(text: str) -> int:
    """X's weighted length: NFC, URLs 23, CJK and emoji 2, most Latin 1 (twitter-text v3)."""
    return int(parse_tweet(nfc(text)).weightedLength)


def first_invalid_character(text: str) -> str | None:
    """The first character X refuses in a tweet (U+FFFE, U+FEFF, U+FFFF, ...), if any."""
    match = invalid_chars.search(nfc(text))
    return None if match is None else match.group(0)


def normalize_for_match(text: str) -> str:
    """Fold what X rewrites so a sent text and its read-back compare equal.

    NFC, HTML entities (&amp; &lt; &gt; come back escaped), every URL or bare domain (X replaces
    them with t.co links) to one token, whitespace runs to one space, trimmed.
    """
    folded = nfc(html.unescape(nfc(text)))
    urls = extract_urls_with_indices(folded)
    # Replace from the end so earlier indices stay valid.
    for entity in sorted(urls, key=lambda e: e["indices"][0], reverse=True):
        start, end = entity["indices"]
        folded = folded[:start] + URL_TOKEN + folded[end:]
    return _WHITESPACE.sub(" ", folded).strip()


def texts_match(sent: str, observed: str) -> bool:
    """True if `observed` (a tweet read back from X) is what posting `sent` produces.

    Besides `normalize_for_match`, X may prepend the @mentions of a reply and append t.co links
    for attached media or a quoted tweet; those additions are ignored when `sent` lacks them.
    """
    want = normalize_for_match(sent)
    got = normalize_for_match(observed)
    if want == got:
        return True
    if not want.startswith("@"):
        got = _LEADING_MENTIONS.sub("", got)
    # Bounded: each pass removes one appended link token.
    while got != want and got.endswith(URL_TOKEN) and got.count(URL_TOKEN) > want.count(URL_TOKEN):
        got = got[: -len(URL_TOKEN)].rstrip()
    return want == got
