"""Tweet text rules: NFC, X's weighted length, the characters X refuses."""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
import types
import unicodedata
from pathlib import Path

# twitter_text is imported on first use, not here, which an idle service that only loads the
# write models never needs. Its module twitter_text.regexp.emoji builds one regular expression
# from its bundled emoji list, importing setuptools' pkg_resources (~10 MiB) to read the file
# and keeping the whole list, its parse and the text as module globals (~4 MiB resident, for
# one pattern of 90 kB): `load_text_rules` installs that module built here instead, with the
# same pattern (a test compares it with twitter_text's) and only the one name twitter_text
# uses from it, `emoji`.
_IMPORT_LOCK = threading.Lock()
_loaded = False
_EMOJI_MODULE = "twitter_text.regexp.emoji"
_EMOJI_HEADER_LINES = 32  # the file's explanation, which twitter_text skips
_CODE_POINT_LINE = re.compile("^[0-9A-F]{3,}")

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
    global _loaded
    with _IMPORT_LOCK:
        if "twitter_text" not in sys.modules and _EMOJI_MODULE not in sys.modules:
            _install_emoji_module()
    import twitter_text  # noqa: F401
    from twitter_text.regexp.invalid_chars import invalid_chars  # noqa: F401

    _loaded = True


def text_rules_loaded() -> bool:
    """Whether `load_text_rules` has run to the end in this process."""
    return _loaded


def _install_emoji_module() -> None:
    module = types.ModuleType(_EMOJI_MODULE, "twitter_text's emoji pattern, built by twitstack.")
    module.emoji = re.compile(_emoji_pattern())  # type: ignore[attr-defined]
    sys.modules[_EMOJI_MODULE] = module


def _emoji_pattern() -> str:
    """The pattern twitter_text.regexp.emoji builds (3.0.0), read line by line.

    Every multi-code-point sequence, longest first (stable among equals), then one class of
    the single code points as ranges; the "Component" group (skin tones, hair) left out.
    """
    spec = importlib.util.find_spec("twitter_text")  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise ImportError("twitter_text is not installed")
    path = Path(spec.origin).parent / "regexp" / "emoji-test.txt"
    sequences: list[str] = []
    singles: list[int] = []
    group = None
    with path.open("rb") as lines:
        for number, raw in enumerate(lines):
            line = raw.decode("utf-8").rstrip("\r\n")
            if number < _EMOJI_HEADER_LINES:
                continue
            if line == "# Status Counts":
                break
            if "subtotal:" in line or not line:
                continue
            if line.startswith("#") and "# group:" in line:
                group = line.split(":")[-1].strip()
            if group == "Component" or not _CODE_POINT_LINE.search(line):
                continue
            code_points = line.split(";")[0].split()
            if len(code_points) > 1:
                sequences.append("".join(rf"\U{point.zfill(8)}" for point in code_points))
            else:
                singles.append(int(code_points[0], 16))
    sequences.sort(key=len, reverse=True)
    ranges = "".join(
        rf"\U{low:08x}" if low == high else rf"\U{low:08x}-\U{high:08x}"
        for low, high in _ranges(singles)
    )
    return "|".join(sequences) + "|[" + ranges + "]"


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    """twitter_text's `get_ranges`: sorted numbers as (low, high) runs, duplicates kept."""
    numbers = sorted(numbers)
    lows = [numbers[0]]
    highs = []
    if numbers[1] - numbers[0] > 1:
        highs.append(numbers[0])
    for i in range(1, len(numbers) - 1):
        if numbers[i] - numbers[i - 1] > 1:
            lows.append(numbers[i])
        if numbers[i + 1] - numbers[i] > 1:
            highs.append(numbers[i])
    highs.append(numbers[-1])
    if len(highs) > len(lows):
        lows.append(highs[-1])
    return list(zip(lows, highs, strict=False))


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
