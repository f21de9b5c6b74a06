"""Weighted tweet length (the matching of read-backs is in tests/writer/test_matching.py)."""

from __future__ import annotations

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
