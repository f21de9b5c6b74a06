"""Who may read a direct message's text: viewers see that a DM exists, never what it says."""

from __future__ import annotations

from typing import Any, Protocol

from twitstack.moderation.roles import Role

DM_ACTION = "dm"
HIDDEN_NOTE = "Direct message: its text is hidden from viewers."


class _HasRole(Protocol):
    @property
    def role(self) -> Role: ...


class _HasUser(Protocol):
    @property
    def user(self) -> _HasRole: ...


class _Listed(Protocol):
    @property
    def action(self) -> str: ...

    @property
    def text(self) -> str: ...


def dm_text_visible(principal: _HasUser | None) -> bool:
    """Authors and above read DM text (they write and moderate them); viewers do not."""
    return principal is not None and principal.user.role >= Role.AUTHOR


def row_text(row: _Listed, visible: bool) -> str:
    """A list row's text as this caller may see it."""
    return HIDDEN_NOTE if str(row.action) == DM_ACTION and not visible else row.text


def redact_summary(summary: dict[str, Any], visible: bool) -> dict[str, Any]:
    """An API list item without a DM's text for callers who may not read it."""
    if summary.get("action") != DM_ACTION or visible:
        return summary
    return {**summary, "text": None, "text_hidden": True}


def redact_detail(detail: dict[str, Any], visible: bool) -> dict[str, Any]:
    """An API request document without a DM's text for such callers."""
    if detail.get("action") != DM_ACTION or visible:
        return detail
    payload = {k: v for k, v in dict(detail.get("payload") or {}).items() if k != "text"}
    # The weighted length is computed from the text: it would tell how long the message is.
    return {**detail, "payload": payload, "weighted_length": None, "text_hidden": True}
