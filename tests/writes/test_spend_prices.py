"""The price table and caps are checked at load; a request's cost; UTC periods."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from twitter_text import extract_urls

from twitstack.core.sections.spend import ACTIONS, PriceTable, SpendSettings
from twitstack.writes.spend import Periods, cost_of, days_of_month, has_url


@pytest.mark.parametrize(
    "bad",
    [
        {"prices": {"post": -0.01}},
        {"prices": {"post": float("nan")}},
        {"prices": {"dm": 150.0}},  # dollars for cents: a typo
        {"prices": {"retweet": 0.01}},
        {"total": {"daily_usd": -1}},
        {"total": {"monthly_usd": float("inf")}},
        {"accounts": {"bad name!": {"daily_usd": 1}}},
        {"prices_as_of": "August"},
    ],
)
def test_bad_spend_settings_are_refused_at_load(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SpendSettings.model_validate(bad)


def test_defaults_are_xs_published_prices() -> None:
    prices = PriceTable()
    assert {a: prices.usd(a) for a in ACTIONS} == {
        "post": 0.015, "post_with_url": 0.2, "dm": 0.015, "delete": 0.01, "media_upload": 0.0,
        "timeline_read": 0.005, "dm_event_read": 0.005, "token_refresh": 0.0,
    }  # fmt: skip
    assert prices.max_request_micros() == 200_000


def test_cost_of_a_request_with_url_and_media() -> None:
    prices = PriceTable(media_upload=0.01)
    linked = cost_of(prices, "tweet", {"text": "see example.com", "media": {"media_ids": ["1"]}})
    assert (linked.action, linked.micros, linked.media_micros) == ("post_with_url", 200_000, 10_000)
    assert cost_of(prices, "tweet", {"text": "no link here."}).action == "post"
    assert cost_of(prices, "dm", {"text": "https://x.com", "recipient_id": "1"}).action == "dm"
    assert cost_of(prices, "delete", {"tweet_id": "1"}).micros == 10_000
    hostile = cost_of(prices, "tweet", {"text": "x", "media": {"media_ids": "not a list"}})
    assert hostile.media_micros == 0
    parts = [
        {"text": "a"},
        {"text": "see example.com"},
        {"text": "c", "media": {"media_ids": ["1"]}},
    ]
    thread = cost_of(prices, "thread", {"parts": parts})
    assert (thread.parts, thread.micros, thread.media_micros) == (3, 230_000, 10_000)


@pytest.mark.parametrize(
    "text",
    [
        "Hello world. This is a reply!",
        "read https://example.com now",
        "see example.com",
        "t.co/abc",
        "a.b",
        "1.5 million",
        "http://localhost:8000/x",
        "abc.COM",
        "bit.ly/x",
        "see https://1.2.3.4/x",
        "ＷＷＷ．例え．テスト",
        "example.xn--p1ai",
        "end.Next sentence",
        "münchen.de",
        "http://例え.テスト",
        "...",
        "",
    ],
)
def test_the_url_prefilter_agrees_with_twitter_text(text: str) -> None:
    assert has_url(text) == bool(extract_urls(text))


def test_periods_are_utc_days_and_calendar_months() -> None:
    late = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    periods = Periods.at(late)
    assert (periods.day, periods.month) == ("2026-12-31", "2026-12")
    assert periods.day_end == periods.month_end == datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    assert Periods.at(periods.day_end).day == "2027-01-01"
    assert len(days_of_month("2028-02")) == 29
    assert len(days_of_month("2026-11")) == 30
