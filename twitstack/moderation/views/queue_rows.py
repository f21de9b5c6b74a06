"""The queue's table rows: what each row shows besides the request itself (its card, the
approve binding, the price), worked out once in Python before the template runs.

The rows are rendered on every cache miss (another filter, page or size), so per-row work in
the template is what a moderator waits for: computing these here keeps the template to plain
output, and prices are looked up per billed action instead of costed per row.
"""

from __future__ import annotations

from dataclasses import dataclass

from twitstack.core.sections.spend import SpendSettings
from twitstack.moderation.card_context import Card
from twitstack.moderation.queries import RequestRow
from twitstack.moderation.spend_view import money
from twitstack.writes.spend import action_for, cost_of

_HASH_LENGTH = 64  # a SHA-256 in hex; rows projected before the hash was kept have ""


@dataclass(frozen=True, slots=True)
class RowView:
    """One queue row's extras: its card, the label of its kind, the approve binding, its price."""

    card: Card | None
    kind: str
    bound: str  # "id revision content_hash" for the checkbox and Approve ("" = not offered)
    price: str


class Prices:
    """What the writer will charge for a listed request's send (the detail page adds media and
    budgets), memoised per billed action: a row's price depends on nothing else."""

    def __init__(self, settings: SpendSettings) -> None:
        self._prices = settings.prices
        self._by_billed: dict[str, str] = {}

    def of(self, row: RequestRow) -> str:
        payload = {"text": row.text}
        if row.action == "thread":
            return f"{money(cost_of(self._prices, row.action, payload).micros)} per part"
        billed = action_for(row.action, payload)
        shown = self._by_billed.get(billed)
        if shown is None:
            shown = money(cost_of(self._prices, row.action, payload).micros)
            self._by_billed[billed] = shown
        return shown


def row_views(
    rows: list[RequestRow],
    cards: dict[str, Card],
    *,
    can_moderate: bool,
    spend: SpendSettings,
) -> list[tuple[RequestRow, RowView]]:
    prices = Prices(spend)
    views = []
    for row in rows:
        card = cards.get(row.id)
        kind = card.kind if card is not None and card.kind in ("reply", "quote") else row.action
        bound = (
            f"{row.id} {row.revision} {row.content_hash}"
            if can_moderate and len(row.content_hash) == _HASH_LENGTH
            else ""
        )
        views.append((row, RowView(card=card, kind=kind, bound=bound, price=prices.of(row))))
    return views
