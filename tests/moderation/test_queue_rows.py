"""Queue row extras: prices memoised per billed action still price each row by its own text."""

from __future__ import annotations

from twitstack.core.sections.spend import SpendSettings
from twitstack.moderation.queries import RequestRow
from twitstack.moderation.views.queue_rows import row_views

HASH = "a" * 64


def _row(rid: str, action: str, text: str, content_hash: str = HASH) -> RequestRow:
    return RequestRow(
        id=rid, action=action, account="default", author="bot", state="pending", text=text,
        revision=2, created_at=0.0, updated_at=0.0, not_before=None, last_actor="",
        last_reason="", result=None, data={}, content_hash=content_hash,
    )  # fmt: skip


def test_each_row_is_priced_by_its_own_text_and_bound_only_for_moderators() -> None:
    rows = [
        _row("r1", "tweet", "plain words"),
        _row("r2", "tweet", "see example.com"),
        _row("r3", "tweet", "plain again"),
        _row("r4", "dm", "see example.com"),
        _row("r5", "tweet", "old row", content_hash=""),
        _row("r6", "thread", "first part"),
    ]
    views = dict(
        (r.id, v) for r, v in row_views(rows, {}, can_moderate=True, spend=SpendSettings())
    )
    prices = {rid: v.price for rid, v in views.items()}
    assert prices == {
        "r1": "$0.015", "r2": "$0.200", "r3": "$0.015", "r4": "$0.015", "r5": "$0.015",
        "r6": prices["r6"],
    }  # fmt: skip
    assert views["r1"].bound == f"r1 2 {HASH}"
    assert views["r5"].bound == ""
    assert views["r2"].kind == "tweet"
    viewer = row_views(rows, {}, can_moderate=False, spend=SpendSettings())
    assert all(v.bound == "" for _, v in viewer)
