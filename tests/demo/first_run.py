"""Helpers for driving a `twitstack demo` subprocess the way a newcomer would."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

_LOGIN = re.compile(r"log in as\s+(\S+) / (\S+)")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def read_banner(proc: subprocess.Popen[str], timeout_s: float = 60) -> str:
    """stdout up to the end of the banner (the line that says how to approve)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("Approve a request in the UI"):
            return "".join(seen)
    raise AssertionError("demo printed no banner:\n" + "".join(seen[-40:]))


def form_fields(html: str, action: str) -> dict[str, str]:
    """The hidden inputs of the form posting to `action`, as a browser would submit them."""
    start = html.index(f'action="{action}"')
    form = html[start : html.index("</form>", start)]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None
    return found.group(1)


def demo_env(tmp_path: Path) -> dict[str, str]:
    """The environment without TWITSTACK_* settings, with a private TMPDIR to check cleanup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWITSTACK_")}
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp)
    return env


@contextmanager
def running_demo(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A demo subprocess and its banner; killed afterwards if the test did not stop it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "twitstack", "demo", *args],
        cwd=tmp_path, env=demo_env(tmp_path), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        yield proc, read_banner(proc)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def field(banner: str, label: str) -> str:
    """The value printed after `label` on its banner line."""
    found = re.search(rf"^  {re.escape(label)}\s+(\S+)", banner, re.MULTILINE)
    assert found is not None, f"no {label!r} line in:\n{banner}"
    return found.group(1)


@contextmanager
def logged_in(base: str, banner: str) -> Iterator[httpx.Client]:
    """A client logged in with the banner's one-time password."""
    found = _LOGIN.search(banner)
    assert found is not None
    with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as ui:
        form = ui.get("/login")
        user, password = found.group(1), found.group(2)
        fields = {"username": user, "password": password, "csrf_token": csrf(form.text)}
        answer = ui.post("/login", data=fields)
        assert answer.status_code == 303, answer.text
        yield ui


def wait_for(condition: object, *, timeout_s: float = 30, what: str = "condition") -> None:
    """Poll `condition()` until it is true, at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def listening_addresses(port: int) -> set[str]:
    """IPv4/IPv6 addresses with a socket in LISTEN on `port`, from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port or len(address) != width:
                continue
            raw = bytes.fromhex(address)
            if width == 8:
                found.add(".".join(str(b) for b in reversed(raw)))
            else:  # four little-endian 32-bit words
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(str(ipaddress.IPv6Address(words)))
    return found
