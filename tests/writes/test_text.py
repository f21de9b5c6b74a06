"""Weighted tweet length and the text matching used by reconciliation."""

from __future__ import annotations

import pytest

from twitstack.writes.text import normalize_for_match, texts_match, tweet_weighted_length


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


def test_normalisation_folds_entities_urls_and_whitespace() -> None:
    """HTML entities, URLs and whitespace runs come out the same on both sides."""
    assert normalize_for_match("a &amp; b\n\n https://t.co/x  ") == normalize_for_match(
        "a & b see.example.com"
    ).replace(" see", "")


@pytest.mark.parametrize(
    ("sent", "observed"),
    [
        ("hello world", "hello world"),
        ("Tom & Jerry <3", "Tom &amp; Jerry &lt;3"),
        ("read https://example.com/a?b=c now", "read https://t.co/AbCdEf now"),
        ("caf\u0065\u0301", "café"),
        ("nice", "@someone nice"),
        ("look", "look https://t.co/media123"),
        ("two  spaces\nand line", "two spaces and line"),
    ],
)
def test_read_back_matches_what_was_sent(sent: str, observed: str) -> None:
    """X's rewrites of a posted text still match the sent text."""
    assert texts_match(sent, observed)


@pytest.mark.parametrize(
    ("sent", "observed"),
    [
        ("hello world", "hello world!"),
        ("a https://x.com b", "a b"),
        ("@bob hi", "@alice hi"),
        ("hi", "hi there https://t.co/x"),
    ],
)
def test_different_texts_do_not_match(sent: str, observed: str) -> None:
    """Real differences are not folded away."""
    assert not texts_match(sent, observed)
