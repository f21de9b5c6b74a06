"""Weighted tweet length (the matching of read-backs is in tests/writer/test_matching.py)."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from twitstack.writes.text import tweet_weighted_length


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("a" * 280, 280),
        ("日" * 140, 280),
        ("see example.com", 27),
        ("see https://example.com/" + "x" * 100, 27),
        ("👨‍👩‍👧‍👦", 2),
        ("e\u0301" * 280, 280),
        ("Hello, world! 👋", 16),
    ],
)
def test_weighted_length_follows_x_rules(text: str, weight: int) -> None:
    """URLs count 23, CJK and emoji sequences 2, NFC first (X's documented examples)."""
    assert tweet_weighted_length(text) == weight


def test_text_rules_load_without_pkg_resources_and_match_its_emoji_list() -> None:
    """The writer loads twitter_text at start without setuptools' pkg_resources (~10 MiB);
    the emoji pattern it builds is the one twitter_text builds with pkg_resources."""
    probe = (
        "import hashlib, sys\n"
        "{setup}\n"
        "import twitter_text.regexp.emoji as e\n"
        "print('pkg_resources' in sys.modules, hashlib.sha1(e.emoji.pattern.encode()).hexdigest())"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-W", "ignore", "-c", probe.format(setup=setup)],
            capture_output=True,
            check=True,
            timeout=120,
            text=True,
        ).stdout.split()
        for setup in (
            "from twitstack.writes.text import load_text_rules; load_text_rules()",
            "import pkg_resources",
        )
    ]
    (ours_loaded, ours), (_, reference) = runs
    assert ours_loaded == "False"
    assert ours == reference


def test_plain_ascii_shortcut_agrees_with_twitter_text() -> None:
    """ASCII texts without a dot or CR are counted without twitter_text: same answer."""
    from twitter_text import parse_tweet

    rng = random.Random(14)
    alphabet = [chr(code) for code in range(128) if chr(code) not in ".\r"]
    texts = ["", "#1 *2 3", "http://localhost", "a@b c:8080/x", "\t\n\x00~"]
    texts += ["".join(rng.choices(alphabet, k=rng.randint(1, 300))) for _ in range(2000)]
    for text in texts:
        assert tweet_weighted_length(text) == parse_tweet(text).weightedLength, repr(text)
    # Texts outside the shortcut still take twitter_text's rules (URL 23, CJK 2, CRLF 1).
    assert tweet_weighted_length("see example.com") == 4 + 23
    assert tweet_weighted_length("漢字") == 4
    assert tweet_weighted_length("a\r\nb") == 3
