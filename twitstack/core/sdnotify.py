"""systemd's notify protocol (READY, STOPPING, WATCHDOG) over $NOTIFY_SOCKET, no dependencies."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import anyio

from twitstack.core.logging import get_logger

log = get_logger(__name__)


class SystemdNotifier:
    """Sends state changes to systemd; does nothing when not started by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An address starting with "@" lives in the abstract namespace (a leading NUL byte).
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._watchdog_s = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to ping the watchdog: half of WATCHDOG_USEC, or None without a watchdog."""
        return self._watchdog_s if self.enabled else None

    def notify(self, message: str) -> bool:
        """Send one message such as "READY=1"; False when it could not be delivered."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall(message.encode())
        except OSError as exc:
            log.warning("systemd.notify_failed", message=message, error=str(exc))
            return False
        return True

    def ready(self) -> None:
        self.notify(f"READY=1\nSTATUS=running\nMAINPID={os.getpid()}")

    def stopping(self) -> None:
        self.notify("STOPPING=1\nSTATUS=stopping")

    async def run_watchdog(self) -> None:
        """Ping the watchdog at half its timeout until cancelled (no-op without one)."""
        interval = self.watchdog_interval_s
        if interval is None:
            return
        while True:
            self.notify("WATCHDOG=1")
            await anyio.sleep(interval)


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec) / 2 / 1_000_000, 0.01)
    except ValueError:
        return None
