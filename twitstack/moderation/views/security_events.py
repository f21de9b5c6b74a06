"""Requests the writer refused for their approval signature: shown as security events."""

from __future__ import annotations

from typing import Any

# The writer parks a request in needs_review with reason `approval_<why>` when its approval
# does not verify. These `why`s mean the approval itself is not to be believed (tampering, a
# forgery, or no approval at all), so the page must not invite anyone to approve it again.
# `stale`, `old_format` (signed before an upgrade) and `no_approval_keys_configured` are
# operational and keep the normal review.
_SECURITY: dict[str, str] = {
    "bad_signature": "the signature does not match the request: it was changed after approval, "
    "or the approval was forged",
    "unknown_key": "it was signed by a key the writer does not trust: a forgery, or a key "
    "rotation step was missed",
    "missing": "it reached the writer marked approved without any approval",
    "malformed": "its approval signature is not even well-formed",
    "spent": "its approval was already used by another send, or was revoked by an edit, "
    "rejection or expiry: a replay",
    "tombstoned": "this request had already reached a final state: a replay of it",
}


def security_event(state: Any, last_reason: str | None) -> str | None:
    """What went wrong, when this request is a refused approval; None for anything else."""
    if str(getattr(state, "value", state)) != "needs_review" or not last_reason:
        return None
    why = last_reason.removeprefix("approval_")
    if why == last_reason:
        return None
    return _SECURITY.get(why)
