"""Read-back matching: X's escaping undone once, links by expanded_url, whitespace exact."""

from __future__ import annotations

from typing import Any

import pytest

from twitstack.sandbox.xapi.render import rendered_text, tweet_object
from twitstack.sandbox.xapi.store import StoredPost
from twitstack.writer.matching import ObservedText, text_matches, unescape_read_back

HTML_TEXTS = [
    "AT&T rocks &amp; rolls",
    "&lt;b&gt;bold&lt;/b&gt;",
    "say &quot;hi&quot;",
    "it&#39;s",
    "&copy; 2026",
    "fish &amp chips",
    "a&nbsp;b",
    "Tom & Jerry <3 >_<",
    "&amp;amp;",
]


def _as_x_shows(text: str, *, entities: bool = True, media: bool = False) -> ObservedText:
    post = StoredPost(
        id="1", author_id="1000", text=text, created_at=0.0, body={},
        media_ids=("5",) if media else (),
    )  # fmt: skip
    shown: dict[str, Any] = tweet_object(post, {"entities"} if entities else set())
    return ObservedText.parse(shown["text"], shown.get("entities") if entities else None)


@pytest.mark.parametrize("text", HTML_TEXTS)
def test_text_with_html_references_matches_its_escaped_read_back(text: str) -> None:
    """A sent `&amp;` reads back as `&amp;amp;`: unescaped once, it is the sent text again."""
    assert text_matches(text, _as_x_shows(text))


@pytest.mark.parametrize("text", HTML_TEXTS)
def test_unescaped_twin_does_not_match(text: str) -> None:
    """`AT&T rocks & rolls` posted is not `AT&T rocks &amp; rolls` (no double unescaping)."""
    twin = unescape_read_back(text)
    if twin != text:
        assert not text_matches(text, _as_x_shows(twin))
        assert not text_matches(twin, _as_x_shows(text))


def test_unescape_is_one_pass_over_three_references() -> None:
    """Only &amp; &lt; &gt; are X's; everything else stays as read."""
    assert unescape_read_back("&amp;amp; &lt;&gt; &quot; &#39; &copy; &amp") == (
        "&amp; <> &quot; &#39; &copy; &amp"
    )


@pytest.mark.parametrize(
    ("sent", "other"),
    [
        ("read https://example.com/a now", "read https://example.com/b now"),
        ("see example.com", "see example.org"),
        ("two  spaces", "two spaces"),
        ("line\nbreak", "line break"),
        ("trailing ", "trailing"),
    ],
)
def test_link_and_whitespace_variants_are_different_posts(sent: str, other: str) -> None:
    """With URL entities, a different link is a different post; whitespace counts exactly."""
    assert text_matches(sent, _as_x_shows(sent))
    assert not text_matches(sent, _as_x_shows(other))


def test_links_shown_as_typed_are_compared_as_typed() -> None:
    """A DM read-back shows its URL as typed: a different URL is a different message."""
    observed = ObservedText.parse("see https://example.com/b now", None)
    assert not text_matches("see https://example.com/a now", observed)
    assert text_matches("see https://example.com/b now", observed)


def test_without_entities_links_cannot_be_told_apart() -> None:
    """When X lists no expanded URLs, only the text outside the links can decide."""
    observed = _as_x_shows("read https://example.com/b now", entities=False)
    assert text_matches("read https://example.com/a now", observed)


@pytest.mark.parametrize(
    ("sent", "observed"),
    [
        ("caf\u0065\u0301", "café"),
        ("nice", "@someone nice"),
    ],
)
def test_x_additions_still_match(sent: str, observed: str) -> None:
    """NFC and the @mentions X prepends to a reply are not differences."""
    assert text_matches(sent, ObservedText.parse(observed, None))


def test_appended_media_link_is_ignored() -> None:
    """The t.co link X appends for attached media is not part of the sent text."""
    assert text_matches(
        "look at https://example.com", _as_x_shows("look at https://example.com", media=True)
    )
    assert not text_matches("look", _as_x_shows("look at", media=True))


def test_rendering_keeps_entity_indices_on_the_rendered_text() -> None:
    """The sandbox's entity indices point at the t.co link in the escaped text."""
    post = StoredPost(id="1", author_id="1000", text="a&b example.com/x", created_at=0.0, body={})
    shown = tweet_object(post, {"entities"})
    (url,) = shown["entities"]["urls"]
    assert shown["text"] == rendered_text(post)
    assert shown["text"][url["start"] : url["end"]] == url["url"]
    assert url["expanded_url"] == "http://example.com/x"


def _with_media(text: str, count: int) -> ObservedText:
    post = StoredPost(
        id="9", author_id="1000", text=text, created_at=0.0, body={},
        media_ids=tuple(str(10 + i) for i in range(count)),
    )  # fmt: skip
    shown: dict[str, Any] = tweet_object(post, {"entities"})
    return ObservedText.parse(shown["text"], shown.get("entities"))


@pytest.mark.parametrize(
    ("sent_media", "shown_media", "match"),
    [(4, 4, True), (1, 1, True), (0, 1, False), (2, 4, False), (1, 0, False)],
)
def test_media_count_must_agree(sent_media: int, shown_media: int, match: bool) -> None:
    """With entities read back, a post's media items (one t.co link, one entity per item) must
    number what the request attached: a text-only request never claims a photo post."""
    observed = _with_media("same text", shown_media)
    assert text_matches("same text", observed, media=sent_media) is match
    assert text_matches("same text", observed)  # callers that do not say: text alone
