"""Each revision's text as the history saw it, and word-level diffs between them."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from twitstack.moderation.db import Database

# Words, runs of spaces and single other characters: a diff of these reads like an edit.
_TOKENS = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)
# Past this many tokens a side, difflib's work grows too fast for a page; shown whole instead.
MAX_TOKENS = 4000


@dataclass(frozen=True)
class RevisionDiff:
    """From one revision's text to the next: ("same" | "del" | "ins", text) pieces in order."""

    from_revision: int
    to_revision: int
    pieces: tuple[tuple[str, str], ...]
    missing: bool = False  # the earlier revision's text was never seen by the history


def word_diff(old: str, new: str) -> tuple[tuple[str, str], ...]:
    """The pieces that turn `old` into `new`, word by word (plain text; templates escape it)."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    if len(a) > MAX_TOKENS or len(b) > MAX_TOKENS:
        return (("del", old), ("ins", new))
    pieces: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            pieces.append(("ins", "".join(b[j1:j2])))
    return tuple(pieces)


async def revision_diffs(db: Database, request_id: str, current: int) -> list[RevisionDiff]:
    """A diff for each edit up to `current`, newest first (at most the last 20 edits)."""
    rows = await db.fetchall(
        "SELECT revision, text FROM request_revisions WHERE request_id = ?"
        " AND revision <= ? ORDER BY revision",
        (request_id, current),
    )
    texts = {int(r[0]): str(r[1]) for r in rows}
    diffs: list[RevisionDiff] = []
    for revision in range(current, max(1, current - 20), -1):
        new, old = texts.get(revision), texts.get(revision - 1)
        if new is None:
            continue
        if old is None:
            diffs.append(RevisionDiff(revision - 1, revision, (("same", new),), missing=True))
        else:
            diffs.append(RevisionDiff(revision - 1, revision, word_diff(old, new)))
    return diffs
