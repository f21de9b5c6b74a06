"""The spend section: X's pay-per-use price table and the daily/monthly budgets per account."""

from __future__ import annotations

import math
import re
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The date of X's published pay-per-use prices the defaults below copy.
PRICES_AS_OF = "2026-08-13"
# Every billable action the writer and its reconciler perform (the metric's `action` label).
ACTIONS = (
    "post",
    "post_with_url",
    "dm",
    "delete",
    "media_upload",
    "timeline_read",
    "dm_event_read",
    "token_refresh",
)
_MAX_PRICE_USD = 100.0  # far above any X price: a larger one is a typo (cents vs dollars)
_ACCOUNT_NAME = r"^[A-Za-z0-9_.-]+$"


class PriceTable(BaseModel):
    """US dollars per billed unit (a request, or a resource read); defaults from X's pricing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    post: float = Field(default=0.015, ge=0, le=_MAX_PRICE_USD)  # Content Create, per request
    post_with_url: float = Field(default=0.200, ge=0, le=_MAX_PRICE_USD)
    dm: float = Field(default=0.015, ge=0, le=_MAX_PRICE_USD)  # DM create
    delete: float = Field(default=0.010, ge=0, le=_MAX_PRICE_USD)  # Interaction: Delete
    # Per media file the writer uploads (a cached media id costs nothing). X's table names no
    # media price as of PRICES_AS_OF: set it from your console. The card adds it per file.
    media_upload: float = Field(default=0.0, ge=0, le=_MAX_PRICE_USD)
    timeline_read: float = Field(default=0.005, ge=0, le=_MAX_PRICE_USD)  # per post read back
    dm_event_read: float = Field(default=0.005, ge=0, le=_MAX_PRICE_USD)  # per DM event read
    token_refresh: float = Field(default=0.0, ge=0, le=_MAX_PRICE_USD)  # not billed by X today

    @model_validator(mode="after")
    def _finite(self) -> Self:
        for action in ACTIONS:
            if not math.isfinite(getattr(self, action)):
                raise ValueError(f"price of {action} must be a finite number")
        return self

    def usd(self, action: str) -> float:
        """The price of one unit of `action` (one of `ACTIONS`)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown billable action {action!r}")
        return float(getattr(self, action))

    def micros(self, action: str) -> int:
        """The price in millionths of a dollar: the ledger counts integers, never floats."""
        return round(self.usd(action) * 1_000_000)

    def max_request_micros(self) -> int:
        """The dearest single write request (what one in-flight request can overshoot by)."""
        return max(self.micros(a) for a in ("post", "post_with_url", "dm", "delete"))


class Caps(BaseModel):
    """A daily and a monthly cap in US dollars; None means no cap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daily_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    monthly_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class SpendSettings(BaseModel):
    """What X charges, and how much the writer may spend per UTC day and calendar month."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prices_as_of: str = Field(default=PRICES_AS_OF, pattern=r"^\d{4}-\d{2}-\d{2}$")
    prices: PriceTable = PriceTable()
    # Caps over every account together, and per account (by writer account name). An admin
    # can raise any of them at runtime (`twitstack spend cap`, the Accounts page); the raised
    # value lives in Redis and wins over these.
    total: Caps = Caps()
    accounts: dict[str, Caps] = Field(default_factory=dict)
    # Ledger rollups are kept this long: days for two months, months for two years.
    day_retention_s: int = Field(default=62 * 24 * 3600, ge=24 * 3600)
    month_retention_s: int = Field(default=2 * 366 * 24 * 3600, ge=32 * 24 * 3600)

    @model_validator(mode="after")
    def _account_names(self) -> Self:
        bad = [name for name in self.accounts if not re.match(_ACCOUNT_NAME, name)]
        if bad:
            raise ValueError(f"spend.accounts: not an account name: {', '.join(sorted(bad))}")
        return self

    def caps_for(self, account: str) -> Caps:
        """The configured caps of `account` (no cap when it has none)."""
        return self.accounts.get(account, Caps())
