"""Tweet text rules: NFC, X's weighted length, the characters X refuses."""

from __future__ import annotations

import sys
import threading
import types
import unicodedata
from importlib import resources

# twitter_text is imported on first use, not here (~6 MiB), which an idle service that only
# loads the write models never needs. It imports setuptools' pkg_resources (~10 MiB more) for
# one call, reading its bundled emoji list: `load_text_rules` gives it that call instead.
_IMPORT_LOCK = threading.Lock()

MAX_TWEET_WEIGHTED_LENGTH = 280
# X's counting rules allow long URLs (each counts 23), but nothing real comes near this; it
# bounds the work parse_tweet does on hostile input.
MAX_TWEET_RAW_CHARS = 10_000


def nfc(text: str) -> str:
    """The NFC form X normalises every text to before counting and storing it."""
    return unicodedata.normalize("NFC", text)


def load_text_rules() -> None:
    """Import twitter_text now: a process that will check texts pays the import before work.

    Loaded lazily for processes that never check a text, but a writer must not take its
    first message and then stall on a ~1 s import with that message in flight: under rapid
    restarts (kill -9, OOM) the message would sit in flight across crashes and be taken for a
    poison pill.
    """
    with _IMPORT_LOCK:
        if "twitter_text.regexp.emoji" not in sys.modules and "pkg_resources" not in sys.modules:
            _import_with_resource_string()
    import twitter_text  # noqa: F401
    from twitter_text.regexp.invalid_chars import invalid_chars  # noqa: F401


def _resource_string(module: str, name: str) -> bytes:
    # pkg_resources' meaning: `name` beside the module `module` (a package or a plain module).
    loaded = sys.modules.get(module)
    package = module if loaded is None or hasattr(loaded, "__path__") else loaded.__package__
    return (resources.files(package or module) / name).read_bytes()


def _import_with_resource_string() -> None:
    # Only for the moment of the import, and only if nothing loaded the real one: afterwards an
    # `import pkg_resources` anywhere gets setuptools' module as usual.
    stand_in = types.ModuleType("pkg_resources")
    stand_in.resource_string = _resource_string  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = stand_in
    try:
        import twitter_text.regexp.emoji  # noqa: F401
    finally:
        if sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]


def tweet_weighted_length(text: str) -> int:
    """X's weighted length: NFC, URLs 23, CJK and emoji 2, most Latin 1 (twitter-text v3)."""
    if text.isascii() and "." not in text and "\r" not in text:
        # No URL without a dot, no emoji and nothing to normalise in ASCII, no CR to fold:
        # every character weighs 1 (tests compare this with twitter_text on random texts).
        return len(text)
    from twitter_text import parse_tweet

    return int(parse_tweet(nfc(text)).weightedLength)


def first_invalid_character(text: str) -> str | None:
    """The first character X refuses in a tweet (U+FFFE, U+FEFF, U+FFFF, ...), if any."""
    from twitter_text.regexp.invalid_chars import invalid_chars

    match = invalid_chars.search(nfc(text))
    return None if match is None else match.group(0)
