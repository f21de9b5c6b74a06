"""Short, safe descriptions of JSON values for error messages ("string 'abc' (3 characters)")."""

from __future__ import annotations

from collections.abc import Mapping


def describe(value: object) -> str:
    """A short, safe description of a JSON value for error messages ("a string 'abc'")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        text = repr(value)
        return f"number {text[:40]}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r} ({len(value)} characters)"
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    if isinstance(value, Mapping):
        return f"an object with {len(value)} keys"
    return type(value).__name__
