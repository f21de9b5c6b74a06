"""The composer's form fields and the tweet or thread payload they make (New and Edit pages).

One form serves a tweet and a thread: `text` is the tweet (or the thread's first part), every
non-blank `part` after it makes the request a thread, in order. A poll (`poll_option` x 2-4,
`poll_minutes`) and a quote (`quote`: a post id or its x.com / twitter.com URL) go on the
tweet or the thread's first part. Blank boxes are unused boxes, not empty parts; every other
rule is the wire format's, checked by the same validation as every door.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from twitstack.writes.errors import PayloadError
from twitstack.writes.post_ref import parse_post_ref
from twitstack.writes.thread import MAX_THREAD_PARTS

POLL_BOXES = 4
MAX_FORM_PARTS = MAX_THREAD_PARTS + 5  # a few past the limit, so the limit's message shows


class ComposeError(ValueError):
    """A form value that cannot become a payload; the message is for the person who typed it."""


@dataclass
class ComposerValues:
    """What the form shows: the values typed (after an error) or the request's (to edit)."""

    text: str = ""
    parts: list[str] = field(default_factory=list)
    poll_options: list[str] = field(default_factory=list)
    poll_minutes: str = ""
    quote: str = ""

    @property
    def poll_boxes(self) -> list[str]:
        """The poll options padded with blank boxes to POLL_BOXES."""
        return [*self.poll_options, *[""] * (POLL_BOXES - len(self.poll_options))]


def _clean(value: object) -> str:
    return str(value if value is not None else "").replace("\r\n", "\n")


def values_from_form(form: FormData) -> ComposerValues:
    """The typed values, blank boxes dropped (bounded: a form cannot make unbounded work)."""
    parts = [_clean(p) for p in form.getlist("part")[:MAX_FORM_PARTS]]
    options = [_clean(o).strip() for o in form.getlist("poll_option")[: POLL_BOXES + 2]]
    return ComposerValues(
        text=_clean(form.get("text", "")),
        parts=[p for p in parts if p.strip()],
        poll_options=[o for o in options if o],
        poll_minutes=_clean(form.get("poll_minutes", "")).strip(),
        quote=_clean(form.get("quote", "")).strip(),
    )


def values_from_payload(action: str, payload: Mapping[str, Any]) -> ComposerValues:
    """The composer's view of a stored tweet or thread payload (to edit it)."""
    if action == "thread":
        raw_parts = payload.get("parts")
        parts = (
            [p for p in raw_parts if isinstance(p, Mapping)] if isinstance(raw_parts, list) else []
        )
        first: Mapping[str, Any] = parts[0] if parts else {}
        texts = [str(p.get("text", "")) for p in parts[1:]]
    else:
        first, texts = payload, []
    poll = first.get("poll") if isinstance(first.get("poll"), Mapping) else {}
    options = poll.get("options") if isinstance(poll, Mapping) else None
    minutes = poll.get("duration_minutes") if isinstance(poll, Mapping) else None
    quote = first.get("quote_tweet_id")
    return ComposerValues(
        text=str(first.get("text", "")),
        parts=texts,
        poll_options=[str(o) for o in options] if isinstance(options, list) else [],
        poll_minutes="" if minutes is None else str(minutes),
        quote=quote if isinstance(quote, str) else "",
    )


def _extras(values: ComposerValues) -> dict[str, Any]:
    """The poll and quote of the first post, from the typed values."""
    extras: dict[str, Any] = {}
    if values.quote:
        try:
            extras["quote_tweet_id"] = parse_post_ref(values.quote)
        except PayloadError as exc:
            raise ComposeError(f"Quote: {exc.message.split(': ', 1)[-1]}") from None
    if values.poll_options or values.poll_minutes:
        if not values.poll_minutes.isdigit() or len(values.poll_minutes) > 6:
            raise ComposeError("Poll: expected a duration in whole minutes (5-10080).")
        extras["poll"] = {
            "options": list(values.poll_options),
            "duration_minutes": int(values.poll_minutes),
        }
    return extras


def compose_payload(
    values: ComposerValues, *, thread: bool | None = None, keep: Sequence[Mapping[str, Any]] = ()
) -> tuple[str, dict[str, Any]]:
    """(action, payload) for the typed values: a thread when parts follow the text.

    `thread` fixes the action (an edit cannot change it). `keep` are an edited thread's stored
    parts: extras the form does not show (a later part's poll or quote, set through the API)
    stay with the part at the same position.
    """
    first = {"text": values.text, **_extras(values)}
    if thread is False and values.parts:
        raise ComposeError("Parts: a tweet cannot become a thread; submit a new request.")
    if not values.parts and not thread:
        return "tweet", first
    parts: list[dict[str, Any]] = [first]
    for index, text in enumerate(values.parts, start=1):
        kept = dict(keep[index]) if index < len(keep) else {}
        parts.append({**kept, "text": text})
    return "thread", {"parts": parts}


def edited_payload(
    action: str, payload: Mapping[str, Any], values: ComposerValues
) -> dict[str, Any]:
    """The payload after a composer edit; what the form does not show (a reply) is kept."""
    if action == "thread":
        stored = payload.get("parts")
        keep = [p for p in stored if isinstance(p, dict)] if isinstance(stored, list) else []
        _, composed = compose_payload(values, thread=True, keep=keep)
        return {**{k: v for k, v in payload.items() if k != "parts"}, **composed}
    _, composed = compose_payload(values, thread=False)
    shown = ("text", "poll", "quote_tweet_id")
    return {**{k: v for k, v in payload.items() if k not in shown}, **composed}
