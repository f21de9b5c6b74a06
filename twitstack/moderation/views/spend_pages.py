"""X spend: an admin raises a cap from the Accounts page (audited); `GET /api/spend`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from twitstack.moderation.access import client_ip, deps_of, principal_of
from twitstack.moderation.flash import flash_redirect
from twitstack.moderation.spend_view import BudgetLine, budget_held_accounts, money, scope_spend
from twitstack.writes.spend import PERIODS, TOTAL, CapError, raise_cap

_MAX_FIELD = 200


async def cap_submit(request: Request) -> Response:
    """Raise one day or month cap (never lower it: that is a settings change)."""
    deps = deps_of(request)
    form = await request.form()
    scope, period, amount = (str(form.get(k, ""))[:_MAX_FIELD] for k in ("scope", "period", "usd"))
    known = {TOTAL, *deps.known_accounts}
    if deps.x_accounts is not None:
        known |= {a.name for a in await deps.x_accounts.accounts.all()}
    if scope not in known:
        return flash_redirect("/accounts", error="No such account to raise a cap for.")
    if period not in PERIODS:
        return flash_redirect("/accounts", error="The period must be day or month.")
    try:
        value = float(amount)
    except ValueError:
        return flash_redirect("/accounts", error="The cap must be a number of dollars.")
    user = principal_of(request).user.username
    try:
        found = await raise_cap(
            deps.redis, deps.spend, scope=scope, period=period, usd_cap=value,
            actor=f"admin:{user}", now=deps.clock(),
        )  # fmt: skip
    except CapError as exc:
        return flash_redirect("/accounts", error=str(exc))
    deps.queue_spend.invalidate()
    label = "all accounts" if scope == TOTAL else scope
    await deps.audit.record(
        user, "spend.cap_raised", label, {"period": period, "micros": found.micros},
        ip=client_ip(request),
    )  # fmt: skip
    return flash_redirect(
        "/accounts", notice=f"{label}: {period} cap raised to {money(found.micros)}."
    )


def _line(line: BudgetLine) -> dict[str, Any]:
    return {
        # None (and "unreadable": true) when the ledger cannot read it: never $0.
        "spent_usd": None if line.spent is None else line.spent / 1_000_000,
        "unreadable": line.spent is None,
        "cap_usd": None if line.cap.micros is None else line.cap.micros / 1_000_000,
        "left_usd": None if line.left is None else line.left / 1_000_000,
        "cap_raised": line.cap.raised,
    }


async def api_spend(request: Request) -> Response:
    """GET /api/spend: this month's and today's spend and caps, overall and per account."""
    deps = deps_of(request)
    names = sorted(set(deps.known_accounts))
    scopes = await scope_spend(
        deps.redis, deps.spend, names, deps.clock(), quarantine=deps.quarantine
    )
    held = set(await budget_held_accounts(deps.redis, names))
    return JSONResponse(
        {
            "prices_as_of": deps.spend.prices_as_of,
            "scopes": [
                {
                    "scope": "total" if s.scope == TOTAL else s.scope,
                    "held_for_budget": s.scope in held,
                    "day": _line(s.day),
                    "month": _line(s.month),
                    "month_by_action_usd": {a: m / 1_000_000 for a, m in s.by_action.items()},
                }
                for s in scopes
            ],
        }
    )
