"""Weighted tweet length (the matching of read-backs is in tests/writer/test_matching.py)."""

from __future__ import annotations

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
