"""The tiny `.env` loader: KEY=VALUE lines into os.environ, without interpolation surprises."""

from __future__ import annotations

import os
import re
from pathlib import Path

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_DOUBLE_QUOTE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class DotenvSyntaxError(ValueError):
    """A `.env` line that is not `KEY=VALUE`; the message names the file and line."""


def parse_dotenv(text: str, *, source: str = ".env") -> dict[str, str]:
    """Parse `.env` text: comments, `export `, quotes, escapes in double quotes, empty values.

    `$VAR` is never expanded: what is written is what you get.
    """
    values: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line_no = index + 1
        line = lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            raise DotenvSyntaxError(f"{source}:{line_no}: expected KEY=VALUE, got {line!r}")
        rest = rest.lstrip()
        if rest.startswith('"'):
            # A double-quoted value may span lines until its closing quote.
            body = rest[1:]
            while not _has_closing_quote(body) and index < len(lines):
                body += "\n" + lines[index]
                index += 1
            value, tail = _read_double_quoted(body, source, line_no)
        elif rest.startswith("'"):
            end = rest.find("'", 1)
            if end == -1:
                raise DotenvSyntaxError(f"{source}:{line_no}: unterminated single quote")
            value, tail = rest[1:end], rest[end + 1 :]
        else:
            value, tail = _strip_inline_comment(rest), ""
        if tail.strip() and not tail.strip().startswith("#"):
            raise DotenvSyntaxError(f"{source}:{line_no}: unexpected text after the closing quote")
        values[key] = value
    return values


def _has_closing_quote(body: str) -> bool:
    escaped = False
    for char in body:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return True
    return False


def _read_double_quoted(body: str, source: str, line_no: int) -> tuple[str, str]:
    out: list[str] = []
    chars = iter(enumerate(body))
    for position, char in chars:
        if char == "\\":
            nxt = next(chars, None)
            if nxt is None:
                break
            out.append(_DOUBLE_QUOTE_ESCAPES.get(nxt[1], "\\" + nxt[1]))
        elif char == '"':
            return "".join(out), body[position + 1 :]
        else:
            out.append(char)
    raise DotenvSyntaxError(f"{source}:{line_no}: unterminated double quote")


def _strip_inline_comment(raw: str) -> str:
    # A `#` starts a comment only after whitespace, so `pa#ss` stays a value.
    match = re.search(r"\s#", raw)
    return (raw[: match.start()] if match else raw).strip()


def load_dotenv(dotenv_path: str | Path | None = None, override: bool = False) -> None:
    """Load `.env` (or `dotenv_path`) into os.environ; a missing file is not an error."""
    path = Path(dotenv_path) if dotenv_path is not None else Path.cwd() / ".env"
    if not path.is_file():
        return
    for key, value in parse_dotenv(path.read_text(encoding="utf-8"), source=str(path)).items():
        if override or key not in os.environ:
            os.environ[key] = value
