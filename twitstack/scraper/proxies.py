"""The seed's proxy_file: proxies in named groups, assigned to accounts, rotated on errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from twitstack.core.errors import ConfigError

DEFAULT_GROUP = "default"


@dataclass
class ProxyPool:
    """Proxies by group; each account/group has a current proxy that moves on on failure.

    File format, one per line: `proxy` or `group proxy`; `#` starts a comment. A proxy is any
    form twscrape accepts (`scheme://…`, `user:pass@host:port`, `host:port[:user:pass]`).
    """

    groups: dict[str, list[str]] = field(default_factory=dict)
    _cursor: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, *, source: str = "proxy file") -> ProxyPool:
        groups: dict[str, list[str]] = {}
        problems = []
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) > 2:
                problems.append(
                    f"{source}:{number}: expected 'proxy' or 'group proxy', got {line!r}"
                )
                continue
            group, proxy = (DEFAULT_GROUP, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
            groups.setdefault(group, []).append(proxy)
        if problems:
            raise ConfigError(problems)
        return cls(groups)

    @classmethod
    def load(cls, path: Path) -> ProxyPool:
        """The pool in `path`; a missing file means no proxies."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise ConfigError([f"proxy_file {path}: {exc.strerror}"]) from None
        return cls.parse(text, source=str(path))

    def assign(self, usernames: Sequence[str], group: str = DEFAULT_GROUP) -> dict[str, str]:
        """Spread a group's proxies over accounts round-robin (stable for a sorted list)."""
        proxies = self.groups.get(group, [])
        if not proxies:
            return {}
        return {name: proxies[i % len(proxies)] for i, name in enumerate(sorted(usernames))}

    def current(self, group: str) -> str | None:
        proxies = self.groups.get(group, [])
        return proxies[self._cursor.get(group, 0) % len(proxies)] if proxies else None

    def rotate(self, group: str) -> str | None:
        """Move `group` to its next proxy (after a proxy error) and return it."""
        if not self.groups.get(group):
            return None
        self._cursor[group] = self._cursor.get(group, 0) + 1
        return self.current(group)

    def next_after(self, proxy: str | None, group: str = DEFAULT_GROUP) -> str | None:
        """The proxy after `proxy` in its group, for moving one account off a failing proxy."""
        proxies = self.groups.get(group, [])
        if not proxies:
            return None
        index = proxies.index(proxy) if proxy in proxies else -1
        return proxies[(index + 1) % len(proxies)]
