"""Contract: twitstack's fast parser reads the fake's pages exactly as twscrape's parser does."""

from __future__ import annotations

import pytest

from twitstack.sandbox.graphql import SynthCorpus, shapes
from twitstack.scraper.parse import parse_page
from twitstack.scraper.twscrape_adapter import twscrape_parse


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_parser_agrees_with_twscrape(seed: int) -> None:
    """Same ids, authors, texts, counts, dates and reply/quote links, page by page."""
    corpus = SynthCorpus.generate(seed=seed, users=15, tweets=120)
    page = shapes.search_page([shapes.tweet_entry(t) for t in corpus.tweets])
    ours = {t.id: t for t in parse_page(page).tweets}
    theirs = {t.id: t for t in twscrape_parse(page)}
    # twscrape also yields quoted tweets flattened in; ours keeps the timeline entries only.
    assert set(ours) == {t.id for t in corpus.tweets}
    assert set(ours) <= set(theirs)
    for tweet_id, mine in ours.items():
        assert mine == theirs[tweet_id]  # raw is excluded from equality


def test_cursor_and_skipped_entries() -> None:
    """The Bottom cursor is returned; cursor entries never become tweets."""
    corpus = SynthCorpus.generate(seed=4, tweets=5)
    entries = [shapes.tweet_entry(t) for t in corpus.tweets]
    entries += [shapes.cursor_entry("top", "Top"), shapes.cursor_entry("next-page")]
    page = parse_page(shapes.search_page(entries))
    assert page.cursor == "next-page"
    assert len(page.tweets) == 5
