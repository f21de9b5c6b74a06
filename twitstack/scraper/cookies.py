"""Cookie files for `accounts import-cookies` and the seed's `cookie_path`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twitstack.scraper.models import AccountError


def load_cookie_file(path: Path, *, username: str | None = None) -> list[tuple[str, str]]:
    """(username, cookie string) pairs from a JSON file.

    Accepted: `{"accounts": [{"username": u, "cookies": c}, ...]}`, a list of such objects,
    `{username: cookies, ...}`, or one account's cookies in any format twscrape parses
    (then `username` names it).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AccountError(f"cannot read cookie file {path}: {exc.strerror}") from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        data = text.strip()  # a raw "k=v; k=v" header or base64
    if isinstance(data, dict) and isinstance(data.get("accounts"), list):
        data = data["accounts"]
    if isinstance(data, list) and data and all(_is_entry(x) for x in data):
        return [(str(x["username"]), _as_str(x["cookies"])) for x in data]
    one_account = isinstance(data, dict) and {"auth_token", "ct0", "cookies"} & data.keys()
    if isinstance(data, dict) and data and not one_account:
        return [(str(name), _as_str(value)) for name, value in data.items()]
    if username is None:
        raise AccountError(f"{path} holds one account's cookies: say whose with --username")
    return [(username, _as_str(data))]


def _is_entry(value: Any) -> bool:
    return isinstance(value, dict) and "username" in value and "cookies" in value


def _as_str(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
